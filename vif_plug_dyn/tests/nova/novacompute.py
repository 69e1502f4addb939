"""nova-compute's VIF work for one port, with nova's own code.

Run as ``python -m vif_plug_dyn.tests.nova.novacompute ACTION SPEC`` in
the network namespace of the test's host (``ip netns exec``): ``ACTION``
is ``plug``, ``config`` or ``unplug``, ``SPEC`` a JSON object with
``instance`` (uuid, name), ``port`` (id, mac, devname), ``network`` (id,
label, mtu) and ``tap_mac`` (what the port binding's ``mac_address``
detail says). It builds the ``nova.network.model.VIF`` Neutron's binding
of vif_type ``tap`` gives nova and calls
:class:`nova.virt.libvirt.vif.LibvirtGenericVIFDriver` as the libvirt
driver does: ``plug`` (``plug_tap``), ``get_config`` (prints the
``<interface>`` XML nova renders) or ``unplug`` (``unplug_tap``).

nova's privileged calls (``nova.privsep.linux_net.create_tap_dev``...)
run in this process as root (``set_client_mode(False)``, what nova's own
tests do to avoid the privsep daemon), so their ``ip`` commands act on
this process's namespace, never the root one.
"""

import json
import sys


def _vif(spec, vif_type='tap'):
    from nova.network import model

    network = model.Network(
        id=spec['network']['id'], label=spec['network']['label'],
        bridge=None, subnets=[],
        meta={'mtu': spec['network']['mtu']})
    return model.VIF(
        id=spec['port']['id'], address=spec['port']['mac'],
        type=vif_type, devname=spec['port']['devname'],
        network=network, vnic_type=model.VNIC_TYPE_NORMAL,
        details={model.VIF_DETAILS_TAP_MAC_ADDRESS: spec['tap_mac']},
        active=True)


def _instance(spec):
    from nova import objects

    flavor = objects.Flavor(name='tiny', vcpus=1, memory_mb=128,
                            root_gb=0, ephemeral_gb=0, swap=0,
                            extra_specs={})
    return objects.Instance(uuid=spec['instance']['uuid'],
                            display_name=spec['instance']['name'],
                            project_id='demo', flavor=flavor,
                            system_metadata={}, image_ref='')


def main(argv):
    action, spec = argv[0], json.loads(argv[1])
    import nova.conf
    import nova.privsep
    from nova import objects
    from nova.virt.libvirt import vif as vif_mod

    nova.conf.CONF([], project='nova', default_config_files=[])
    nova.conf.CONF.set_override('virt_type', 'qemu', group='libvirt')
    nova.privsep.sys_admin_pctxt.set_client_mode(False)
    objects.register_all()
    driver = vif_mod.LibvirtGenericVIFDriver()
    instance, vif = _instance(spec), _vif(spec)
    if action == 'plug-bridge':
        # NOTE(vpd): what nova 34 does with Neutron's ``bridge`` ports
        # (the os-vif linux_bridge route): it refuses them.
        driver.plug(instance, _vif(spec, 'bridge'))
        result = {'plugged': vif['devname']}
    elif action == 'plug':
        driver.plug(instance, vif)
        result = {'plugged': vif['devname']}
    elif action == 'config':
        conf = driver.get_config(
            instance, vif, objects.ImageMeta.from_dict({}), instance.flavor,
            'qemu')
        result = {'xml': conf.to_xml()}
    elif action == 'unplug':
        driver.unplug(instance, vif)
        result = {'unplugged': vif['devname']}
    else:
        raise SystemExit('unknown action %s' % action)
    json.dump(result, sys.stdout)
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
