"""Build live host states (what the helper's dump_state returns) for
unit tests."""

from vif_plug_dyn.hostif import state as state_mod
from vif_plug_dyn.privsep import ops


def link(name, index, kind=None, *, mtu=1500, mac=None, up=False,
         master=None, lower=None, alias=None, data=None, group=0,
         operstate=None):
    """One link dict as ``HostNetwork.get_link`` describes it.

    :param master: the master's index.
    :param lower: IFLA_LINK (a VLAN's parent, a veth's peer).
    """
    owned, tag = ops.parse_alias(alias)
    adopted = ops.parse_adopted(alias)
    return {'name': name, 'index': index, 'kind': kind, 'mtu': mtu,
            'mac': mac or '02:00:00:00:%02x:%02x' % (index // 256,
                                                    index % 256),
            'up': up, 'carrier': up, 'master_index': master,
            'link_index': lower, 'group': group, 'alias': alias,
            'owned': owned, 'tag': tag, 'adopted': adopted is not None,
            'adopted_tag': adopted,
            'operstate': operstate or ('up' if up else 'down'),
            'data': data}


def addr(index, address, prefix, *, name=None, scope=0, flags=None,
         label=None, broadcast=None, peer=None, proto=None, metric=None,
         valid_lft=None, preferred_lft=None):
    """One address dict as ``HostNetwork.list_addresses`` describes it."""
    family = 'inet6' if ':' in address else 'inet'
    return {'index': index, 'name': name, 'family': family,
            'address': address, 'prefix': prefix, 'peer': peer,
            'broadcast': broadcast, 'label': label, 'scope': scope,
            'flags': ['permanent'] if flags is None else flags,
            'valid_lft': valid_lft, 'preferred_lft': preferred_lft,
            'proto': proto, 'metric': metric}


def state(*links, addresses=()):
    """A :class:`HostState` of these links and addresses."""
    return state_mod.HostState.from_dump({'links': list(links),
                                          'addresses': list(addresses)})


CREATED = 'vif_plug_dyn:hostif.%s'
ADOPTED = 'vif_plug_dyn.adopted:hostif.%s'
