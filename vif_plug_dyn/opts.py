"""Configuration options of vif_plug_dyn.

Options are registered on the :class:`oslo_config.cfg.ConfigOpts` given to
:func:`vif_plug_dyn.initialize`; :func:`list_opts` feeds
``oslo-config-generator`` (entry point ``oslo.config.opts``).
"""

import copy

from oslo_config import cfg

from vif_plug_dyn._oslo_privsep import priv_context

GROUP = 'vif_plug_dyn'
PRIVSEP_GROUP = 'vif_plug_dyn_privileged'
LIBVIRT_GROUP = 'vif_plug_dyn_libvirt'

core_opts = [
    cfg.StrOpt('state_path', default='/var/lib/vif_plug_dyn',
               help='Directory for the ledger (ledger.sqlite3), the '
                    'persistent record of ports, endpoints, pool '
                    'allocations and desired cable state.'),
    cfg.StrOpt('network_dir', default='/etc/vif_plug_dyn/networks',
               help='Directory of named host network definitions, one '
                    '<network> XML file per network.'),
    cfg.StrOpt('interface_dir', default='/etc/vif_plug_dyn/interfaces',
               help='Directory of host interface definitions (ethernet, '
                    'bridge, bond, vlan), one libvirt <interface> XML file '
                    'per definition.'),
    cfg.ListOpt('interface_backends', default=[],
                item_type=cfg.types.String(choices=['keyfile', 'ifupdown']),
                help='Persistent backends that write host interface '
                     'definitions where the host\'s own network tooling '
                     'reads them at boot: "keyfile" (NetworkManager '
                     'profiles in etc/NetworkManager/system-connections) '
                     'and/or "ifupdown" (etc/network/interfaces.d), both '
                     'under interface_root. Empty: definitions are only '
                     'kept in interface_dir and applied live.'),
    cfg.StrOpt('interface_root', default='/',
               help='File system root the persistent backends write '
                    'under ("/" on a host; a scratch directory to review '
                    'what would be written).'),
    cfg.DictOpt('network_drivers',
                default={'bridge': 'bridge', 'openvswitch': 'openvswitch',
                         'direct': 'direct', 'hostdev': 'hostdev',
                         'virtual': 'virtual'},
                help='Network driver (an entry point name in the '
                     'vif_plug_dyn.network_drivers namespace) used for each '
                     'network kind. A network definition can override it '
                     'with <driver name="..."/>.'),
    cfg.StrOpt('hypervisor', default='libvirt',
               help='Hypervisor adapter (an entry point name in the '
                    'vif_plug_dyn.hypervisors namespace) that '
                    'vif_plug_dyn.load_hypervisor_adapter() loads: it turns '
                    'endpoints into the hypervisor\'s NIC configuration.'),
    cfg.StrOpt('netns',
               help='Run all host network work inside this network '
                    'namespace (by name, as under /run/netns). The '
                    'privileged helper is started inside it, so it needs no '
                    'capability beyond CAP_NET_ADMIN. Unset: the namespace '
                    'of the process.'),
    cfg.StrOpt('sysfs_root', default='/sys',
               help='Root of the sysfs tree read for SR-IOV physical and '
                    'virtual functions (tests point it at a fake tree).'),
    cfg.StrOpt('ovsdb_socket', default='/run/openvswitch/db.sock',
               help='Unix socket of the Open vSwitch database server used '
                    'by the openvswitch driver.'),
    cfg.StrOpt('ovs_datapath_type', default='system',
               choices=['system', 'netdev'],
               help='Datapath type of the OVS bridges the openvswitch '
                    'driver creates: "system" (kernel datapath) or '
                    '"netdev" (userspace).'),
    cfg.FloatOpt('ovs_timeout', default=30.0, min=0.1,
                 help='Seconds to wait for an OVSDB reply.'),
    cfg.FloatOpt('ovs_apply_wait', default=0.0, min=0.0,
                 help='Seconds to wait for ovs-vswitchd to apply a port '
                      'change after it is committed (0: return once the '
                      'database has committed it).'),
    cfg.StrOpt('direct_reconnect', default='refuse',
               choices=[('refuse', 'a genuine macvtap endpoint cannot be '
                                   'moved or healed at run time'),
                        ('reattach', 'detach the guest NIC and attach it '
                                     'again, same MAC and PCI address '
                                     '(guest-visible)')],
               help='What connect() does with a genuine macvtap (direct) '
                    'endpoint whose source must change. QEMU holds the '
                    'macvtap\'s file descriptor, so the only way is to '
                    'replace the NIC; the guest sees it go and come back '
                    'in the same slot. Steered (ethernet) endpoints never '
                    'need this.'),
    cfg.IntOpt('lock_timeout', default=30, min=1,
               help='Seconds to wait for the ledger when another process '
                    'holds it.'),
]

#: Options of the privileged helper daemon itself, beside oslo.privsep's
#: own in the same group. NOTE(vpd): the daemon reads them from the
#: configuration files on its command line; values a caller sets in its
#: own process (overrides) never reach it.
privsep_policy_opts = [
    cfg.ListOpt('policy_files',
                default=['/etc/vif_plug_dyn/privsep/policy.conf'],
                help='Root-owned policy files the privileged helper '
                     'enforces on devices the library did not create: '
                     'which may be adopted and changed how, which '
                     'bridges the library\'s devices may join, which '
                     'lower devices may carry macvlan, macvtap and VLAN '
                     'devices, which PFs\' VFs may be configured. The '
                     'first is the one "vif-plug-dyn policy generate" '
                     'writes; later ones hold hand-written additions; '
                     'entries are merged. Each file and its directories '
                     'must belong to root and not be writable by group '
                     'or others, or the daemon refuses every such '
                     'operation.'),
    cfg.BoolOpt('require_policy', default=False,
                help='Refuse every operation on a device the library did '
                     'not create when no policy file exists. Off (the '
                     'default), a daemon without a policy allows them as '
                     'earlier releases did and logs a warning for each '
                     'kind of use; a future release will turn this on.'),
]

libvirt_opts = [
    cfg.StrOpt('uri', default='qemu:///system',
               help='libvirt connection URI used by the libvirt adapter.'),
    cfg.FloatOpt('detach_timeout', default=10.0, min=0.1,
                 help='Seconds to wait for libvirt\'s DEVICE_REMOVED event '
                      'after a detach request before retrying.'),
    cfg.IntOpt('detach_attempts', default=3, min=1,
               help='How many times a detach request is sent before the '
                    'detach is reported as failed.'),
]


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every option of the library on ``conf``."""
    conf.register_opts(core_opts, group=GROUP)
    conf.register_opts(libvirt_opts, group=LIBVIRT_GROUP)
    conf.register_opts(privsep_policy_opts, group=PRIVSEP_GROUP)


def list_opts() -> list[tuple[str, list[cfg.Opt]]]:
    """Return the options for ``oslo-config-generator``."""
    # NOTE(vpd): the privsep context registers its own options when it is
    # built; list copies here so the sample documents that group too.
    return [(GROUP, list(core_opts)),
            (PRIVSEP_GROUP, copy.deepcopy(priv_context.OPTS) +
             list(privsep_policy_opts)),
            (LIBVIRT_GROUP, list(libvirt_opts))]
