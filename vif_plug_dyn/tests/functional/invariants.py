"""What must hold between the ledger and the host, whatever happened.

The reliability tests (faults, concurrency) end with :func:`check`: it
compares a full link dump of the namespace with the ledger and returns
every disagreement as a sentence, so a failing test says what is wrong.
"""

import json

from vif_plug_dyn import endpoints
from vif_plug_dyn import ledger as ledger_mod
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn.drivers import direct
from vif_plug_dyn.privsep import ops

#: Alias prefix of every device the library owns.
OWNED = ops.ALIAS_PREFIX


def dump(ns) -> dict[str, dict]:
    """``{name: link}`` from ``ip -d -j link show`` inside ``ns``."""
    out = ns.check_output(['ip', '-d', '-j', 'link', 'show'])
    return {link['ifname']: link for link in json.loads(out)}


def owner_tag(link: dict) -> str | None:
    """The owner tag of a device the library made (``''`` untagged),
    ``None`` for anyone else's."""
    alias = link.get('ifalias') or ''
    owned, tag = ops.parse_alias(alias)
    if not owned:
        return None
    return tag or ''


def check(ns, manager: manager_mod.EndpointManager) -> list[str]:
    """Every way the host and the ledger disagree (empty: they agree).

    * every port is ``active`` (nothing half-built is left);
    * every recorded device exists; every device the library owns is
      recorded or belongs to a network the ledger still uses;
    * every recorded tap of a plugged port on a bridge network has that
      bridge as master, an unplugged one none;
    * every recorded macvlan sits on the pool interface its port holds;
      a plugged steered port whose lower device exists has its macvlan,
      an unplugged one has none;
    * every allocation belongs to a known port, no port holds two places
      of one network, no pool interface is over its connection limit.
    """
    problems: list[str] = []
    links = dump(ns)
    ledger = manager.ledger
    records = ledger.list_ports()
    by_port = {r.port.port_id: r for r in records}
    devices = {d.name: d for d in ledger.devices()}
    used_networks = {r.network for r in records}
    for record in records:
        if record.state != ledger_mod.ACTIVE or record.endpoint is None:
            problems.append('port %s is %s' % (record.port.port_id,
                                               record.state))
    for name, device in devices.items():
        if name not in links:
            problems.append('recorded %s %s of port %s does not exist' % (
                device.kind, name, device.port_id))
        elif device.port_id is not None and device.port_id not in by_port:
            problems.append('device %s is recorded for unknown port %s' % (
                name, device.port_id))
    for name, link in links.items():
        tag = owner_tag(link)
        if tag is None:
            continue
        if tag.startswith('net:'):
            if tag[4:] not in used_networks:
                problems.append('network device %s of %s outlived its '
                                'ports' % (name, tag[4:]))
        elif name not in devices:
            problems.append('owned device %s (tag %s) is not recorded' % (
                name, tag))
    allocations = ledger.allocations()
    held: dict[tuple[str, str], str] = {}
    for (network_name, resource), port_ids in allocations.items():
        for port_id in port_ids:
            if port_id not in by_port:
                problems.append('%s of %s is held by unknown port %s' % (
                    resource, network_name, port_id))
            key = (network_name, port_id)
            if key in held:
                problems.append('port %s holds %s and %s of %s' % (
                    port_id, held[key], resource, network_name))
            held[key] = resource
        try:
            network = manager.registry.get(network_name)
        except Exception:  # noqa: BLE001 - reported below
            problems.append('allocation on undefined network %s' %
                            network_name)
            continue
        limit = network.connection_limit(resource)
        if limit is not None and len(port_ids) > limit:
            problems.append('%s of %s has %d connections, limit %d' % (
                resource, network_name, len(port_ids), limit))
    for record in records:
        endpoint = record.endpoint
        if not isinstance(endpoint, endpoints.EthernetEndpoint):
            continue
        network = manager.registry.get(record.network)
        plugged = record.cable == ledger_mod.PLUGGED
        tap = links.get(endpoint.tap)
        if tap is None:
            problems.append('tap %s of port %s is missing' % (
                endpoint.tap, record.port.port_id))
            continue
        if network.kind == 'bridge':
            want = str(network.bridge) if plugged else None
            if tap.get('master') != want:
                problems.append('tap %s of port %s has master %s, want %s'
                                % (endpoint.tap, record.port.port_id,
                                   tap.get('master'), want))
        elif network.kind == 'direct':
            macvlan = record.port.macvlan_name
            lower = ledger.allocation(record.port.port_id, network.name)
            if plugged and lower is None:
                problems.append('plugged port %s holds no pool interface'
                                % record.port.port_id)
            if plugged and lower in links:
                link = links.get(macvlan)
                if link is None:
                    problems.append('macvlan %s of plugged port %s is '
                                    'missing' % (macvlan,
                                                 record.port.port_id))
                elif link.get('link') != lower:
                    problems.append('macvlan %s is on %s, its port holds '
                                    '%s' % (macvlan, link.get('link'),
                                            lower))
                elif devices.get(macvlan) is None or \
                        devices[macvlan].kind != direct.MACVLAN:
                    problems.append('macvlan %s is not recorded' % macvlan)
            if not plugged and macvlan in links:
                problems.append('unplugged port %s still has macvlan %s' % (
                    record.port.port_id, macvlan))
    return problems
