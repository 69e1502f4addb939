"""An in-memory stand-in for :class:`vif_plug_dyn.host.HostNetwork`, for
unit tests of the host interface API without privileges.

It keeps links and addresses as the helper describes them and applies
helper operations with the helper's ownership rules (created, adopted,
foreign), in stop-at-first-error or best-effort mode. It is a model, not
the kernel: the functional tests check the real thing.
"""

import copy

from vif_plug_dyn import exception
from vif_plug_dyn.privsep import ops
from vif_plug_dyn.tests.unit.hostif.livestate import addr
from vif_plug_dyn.tests.unit.hostif.livestate import link

_MODES = {v: k for k, v in ops.BOND_MODES.items()}


class FakeHost:
    """Links and addresses in memory; ``fail`` names an operation (by a
    predicate on the op dict) the "kernel" refuses."""

    def __init__(self, *links, addresses=()):
        self.links = {item['name']: dict(item) for item in links}
        self.addresses = [dict(a) for a in addresses]
        self.fail = None
        self.calls = []

    # -- queries ---------------------------------------------------------

    def dump_state(self, sync=False):
        return copy.deepcopy({'links': list(self.links.values()),
                              'addresses': self.addresses})

    def snapshot(self):
        return copy.deepcopy((self.links, self.addresses))

    # -- operations -------------------------------------------------------

    def apply(self, batch, stop_on_error=True):
        checked = ops.validate_batch(list(batch))
        self.calls.append([op['op'] for op in checked])
        results = []
        created = []
        failed = False
        for i, op in enumerate(checked):
            result = {'index': i, 'op': op['op'], 'status': 'skipped',
                      'error': None}
            results.append(result)
            if failed and stop_on_error:
                continue
            try:
                if self.fail is not None and self.fail(op):
                    raise exception.NetlinkOperationFailed(
                        operation=op['op'], device=op.get('name'),
                        errno=22, reason='Invalid argument')
                extra = getattr(self, '_' + op['op'])(op)
                if op['op'].startswith('create_'):
                    created.append(op['name'])
                result.update(extra or {}, status='ok')
            except exception.VifPlugDynException as exc:
                failed = True
                result.update(status='error', error={
                    'type': type(exc).__name__, 'message': exc.message,
                    'kwargs': exc.kwargs})
        if failed and stop_on_error:
            for name in created:
                self._drop(name)
            for result in results:
                if result['status'] == 'ok' and result['op'].startswith(
                        'create_'):
                    result['status'] = 'rolled_back'
        return results

    def _get(self, name):
        if name not in self.links:
            raise exception.DeviceNotFound(device=name)
        return self.links[name]

    def _managed(self, name, operation):
        item = self._get(name)
        if not (item['owned'] or item['adopted']):
            raise exception.DeviceNotOwned(operation=operation, device=name)
        return item

    def _index(self, name):
        return self._get(name)['index']

    def _new(self, op, kind, data, lower=None):
        if op['name'] in self.links:
            raise exception.NetlinkOperationFailed(
                operation=op['op'], device=op['name'], errno=17,
                reason='File exists')
        used = {item['index'] for item in self.links.values()}
        index = op.get('index') or max(used | {1}) + 1
        self.links[op['name']] = link(
            op['name'], index, kind, mtu=op['mtu'] or 1500, mac=op['mac'],
            up=op['up'], alias=ops.alias_for(op['tag']), data=data,
            group=0,
            lower=None if lower is None else self._index(lower))

    def _create_bridge(self, op):
        self._new(op, 'bridge', {'stp_state': int(op['stp']),
                                 'forward_delay': op['forward_delay']})

    def _create_bond(self, op):
        self._new(op, 'bond', {'mode': ops.BOND_MODES[op['mode']]})
        self._bond_options(self.links[op['name']]['data'], op)

    @staticmethod
    def _bond_options(data, op):
        # As the kernel reports them: use_carrier 0/1, arp_validate as
        # its index.
        for key in ('miimon', 'updelay', 'downdelay', 'use_carrier',
                    'arp_interval', 'arp_targets', 'arp_validate'):
            value = op.get(key)
            if value is None:
                continue
            if key == 'use_carrier':
                value = int(value)
            elif key == 'arp_validate':
                value = ops.ARP_VALIDATE.index(value)
            data[key] = value

    def _set_bond(self, op):
        item = self._managed(op['name'], 'set_bond')
        if op['mode'] is not None:
            item['data']['mode'] = ops.BOND_MODES[op['mode']]
        if op['primary'] is not None:
            item['data']['primary'] = self._index(op['primary'])
        self._bond_options(item['data'], op)

    def _create_vlan(self, op):
        self._new(op, 'vlan', {'vlan_id': op['vlan_id']}, lower=op['lower'])

    def _set_link(self, op):
        item = self._get(op['name'])
        # Like the helper: the owner tag only on devices it created.
        allowed = item['owned'] or (item['adopted'] and op['tag'] is None)
        if not allowed:
            raise exception.DeviceNotOwned(operation='set_link',
                                           device=op['name'])
        if op['master'] is not None:
            item['master_index'] = self._index(op['master'])
        if op['nomaster']:
            item['master_index'] = None
        for key in ('mtu', 'mac', 'up'):
            if op[key] is not None:
                item[key] = op[key]
        if op['tag'] is not None:
            item['alias'] = ops.alias_for(op['tag'])
            item['tag'] = op['tag']

    def _set_bridge(self, op):
        item = self._managed(op['name'], 'set_bridge')
        if op['stp'] is not None:
            item['data']['stp_state'] = int(op['stp'])
        if op['forward_delay'] is not None:
            item['data']['forward_delay'] = op['forward_delay']

    def _adopt(self, op):
        item = self._get(op['name'])
        if item['owned']:
            raise exception.DeviceAlreadyOwned(device=op['name'],
                                               alias=item['alias'])
        previous = item['alias']
        item.update(alias=ops.adopted_alias(op['tag']), adopted=True,
                    adopted_tag=op['tag'])
        return {'previous_alias': previous}

    def _release(self, op):
        item = self._get(op['name'])
        if not item['adopted']:
            raise exception.DeviceNotOwned(operation='release',
                                           device=op['name'])
        item.update(alias=op['alias'] or None, adopted=False,
                    adopted_tag=None)

    def _add_address(self, op):
        index = self._managed(op['name'], 'add_address')['index']
        for item in self.addresses:
            if (item['index'], item['address'], item['prefix']) == (
                    index, op['address'], op['prefix']):
                raise exception.NetlinkOperationFailed(
                    operation='newaddr', device=op['name'], errno=17,
                    reason='File exists')
        self.addresses.append(addr(
            index, op['address'], op['prefix'], name=op['name'],
            broadcast=op['broadcast'], label=op['label'],
            scope=op['scope'] or 0, peer=op['peer'], proto=op['proto'],
            metric=op['metric'],
            flags=sorted(['permanent'] + (op['flags'] or []))))

    def _del_address(self, op):
        index = self._managed(op['name'], 'del_address')['index']
        self.addresses = [a for a in self.addresses if (
            a['index'], a['address'], a['prefix']) != (
                index, op['address'], op['prefix'])]

    def _delete(self, op):
        for name in op['names']:
            if name in self.links and not self.links[name]['owned']:
                raise exception.DeviceNotOwned(operation='delete',
                                               device=name)
        for name in op['names']:
            self._drop(name)

    def _drop(self, name):
        item = self.links.pop(name, None)
        if item is None:
            return
        for other in self.links.values():
            if other['master_index'] == item['index']:
                other['master_index'] = None
        self.addresses = [a for a in self.addresses
                          if a['index'] != item['index']]
