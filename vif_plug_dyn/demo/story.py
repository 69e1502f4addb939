"""The story the demo tells, step by step, on real kernel objects.

Host *alpha* is a private network namespace with its own privileged
helper daemon and its own watcher. Its networks: *red* is a Linux
bridge, *blue* a steered direct network on the lower device ``uplink0``
(a veth whose far end sits in a second namespace, the *lan*), *green* an
Open vSwitch bridge (a private ovsdb-server and ovs-vswitchd inside
alpha, userspace datapath) when Open vSwitch is installed. A stand-in
guest answers ping on the port's tap. Host *beta* defines *blue*
differently (a bridge): a migration-style request there gets a different
endpoint for the same network name.
"""

import json
import os
from xml.dom import minidom  # noqa: S408 - our own XML
import shutil
import sys
import tempfile
import time
import uuid
from typing import Any

from oslo_config import cfg

import vif_plug_dyn
from vif_plug_dyn import exception
from vif_plug_dyn import manager as manager_mod
from vif_plug_dyn import opts
from vif_plug_dyn import ports
from vif_plug_dyn import privsep
from vif_plug_dyn.demo import sandbox as sandbox_mod
from vif_plug_dyn.demo import timeline as timeline_mod
from vif_plug_dyn.runtime import watcher as watcher_mod
from vif_plug_dyn.tests.functional.harness import ovs as ovs_harness
from vif_plug_dyn.virt.libvirt import adapter as libvirt_adapter

GUEST_MAC = '52:54:00:de:00:01'
RED = ("<network type='bridge'><name>red</name>"
       "<bridge name='br-red'/></network>")
BLUE = ("<network type='direct'><name>blue</name>"
        "<forward mode='bridge'><interface dev='uplink0'/></forward>"
        "</network>")
GREEN = ("<network type='openvswitch'><name>green</name>"
         "<bridge name='br-green'/></network>")
BLUE_ON_BETA = ("<network type='bridge'><name>blue</name>"
                "<bridge name='br-blue'/></network>")


class Story:
    """Runs the demo; every step is timed on a :class:`Timeline`."""

    def __init__(self, out: Any = sys.stdout) -> None:
        self.line = timeline_mod.Timeline(out)
        self.workdir = tempfile.mkdtemp(prefix='vpd-demo-')
        self.facts: dict[str, Any] = {}
        self.watcher: watcher_mod.Watcher | None = None
        self.ovs: Any = None

    # -- helpers -----------------------------------------------------------

    def _conf(self, name: str, netns: str | None,
              networks: dict[str, str], **overrides: Any) -> cfg.ConfigOpts:
        conf = cfg.ConfigOpts()
        opts.register_opts(conf)
        conf([], default_config_files=[])
        net_dir = os.path.join(self.workdir, name, 'networks')
        os.makedirs(net_dir, exist_ok=True)
        for net, xml in networks.items():
            with open(os.path.join(net_dir, net + '.xml'), 'w') as handle:
                handle.write(xml)
        conf.set_override('state_path',
                          os.path.join(self.workdir, name, 'state'),
                          opts.GROUP)
        conf.set_override('network_dir', net_dir, opts.GROUP)
        conf.set_override('netns', netns, opts.GROUP)
        for key, value in overrides.items():
            conf.set_override(key, value, opts.GROUP)
        return conf

    def _ping(self, box: sandbox_mod.Sandbox, netns: str,
              address: str) -> bool:
        result = box.run(netns, ['ping', '-n', '-q', '-c', '2', '-i', '0.2',
                                 '-W', '1', address], check=False)
        return result.returncode == 0

    @staticmethod
    def _wait_health(mgr: manager_mod.EndpointManager, port_id: str,
                     wanted: str, timeout: float = 10.0) -> str:
        """Wait for the watcher to record ``wanted`` as the port's health;
        returns the health seen last."""
        deadline = time.monotonic() + timeout
        while True:
            record = mgr.ledger.get_port(port_id)
            health = record.health if record is not None else 'gone'
            if health == wanted or time.monotonic() > deadline:
                return health
            time.sleep(0.02)

    def _master(self, box: sandbox_mod.Sandbox, netns: str,
                name: str) -> str | None:
        out = box.run(netns, ['ip', '-j', 'link', 'show', name]).stdout
        return json.loads(out)[0].get('master')

    # -- the story -----------------------------------------------------------

    def run(self) -> bool:
        """Tell the whole story; returns whether every step succeeded."""
        try:
            with sandbox_mod.sandbox() as box:
                try:
                    self._story(box)
                finally:
                    if self.watcher is not None:
                        self.watcher.stop()
                        self.watcher.close()
                    if self.ovs is not None:
                        self.ovs.stop()
                    privsep.stop()
                    privsep.set_netns(None)
                with self.line.step('Remove the hosts and the lan') as step:
                    box.close()
                    step.details['leftover_namespaces'] = box.leftovers()
                    if box.leftovers():
                        raise RuntimeError('namespaces left behind')
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            self.line.say('the story stopped: %s: %s' % (
                type(exc).__name__, exc))
            return False
        finally:
            shutil.rmtree(self.workdir, ignore_errors=True)
        return all(step.ok for step in self.line.steps)

    def _story(self, box: sandbox_mod.Sandbox) -> None:
        line = self.line
        with line.step('Build host alpha and a lan behind its uplink0') as s:
            alpha = box.namespace('alpha')
            lan = box.namespace('lan')
            box.run(alpha, ['ip', 'link', 'add', 'uplink0', 'type', 'veth',
                            'peer', 'name', 'lan0', 'netns', lan])
            box.run(alpha, ['ip', 'link', 'set', 'uplink0', 'up'])
            box.run(lan, ['ip', 'link', 'set', 'lan0', 'up'])
            box.run(lan, ['ip', 'addr', 'add', '198.51.100.1/24', 'dev',
                          'lan0'])
            networks = {'red': RED, 'blue': BLUE}
            # NOTE(vpd): the stand-in guest is a process on the tap, not a
            # hypervisor's guest: there is no guest link to tell, which
            # the configuration says ("none", logged once).
            overrides: dict[str, Any] = {'hypervisor': 'none'}
            if not ovs_harness.missing_binaries():
                # NOTE(vpd): a private Open vSwitch (userspace datapath)
                # inside alpha, for the green network.
                self.ovs = ovs_harness.OpenVSwitch(alpha)
                self.ovs.start()
                networks['green'] = GREEN
                overrides.update(ovsdb_socket=self.ovs.db_sock,
                                 ovs_datapath_type='netdev',
                                 ovs_apply_wait=10.0)
            # NOTE(vpd): the public path, as a user's: initialize() with
            # the host's configuration (its netns starts the privileged
            # helper inside alpha on the first call), then the module
            # functions.
            mgr = vif_plug_dyn.initialize(
                self._conf('alpha', alpha, networks, **overrides))
            # NOTE(vpd): the watcher listens to alpha's rtnetlink events
            # and heals ports when host interfaces come back.
            self.watcher = watcher_mod.Watcher(mgr)
            self.watcher.start()
            s.details.update(host=alpha, lan=lan)

        with line.step('Ask what alpha offers') as s:
            caps = vif_plug_dyn.host_capabilities()
            for name, entry in sorted(caps['networks'].items()):
                line.say('%-5s %-12s offers %s' % (
                    name, entry['kind'], ', '.join(entry['endpoint_types'])))
            s.details['capabilities'] = caps

        port = ports.Port(port_id=str(uuid.uuid4()), mac=GUEST_MAC,
                          network='red', vm_uuid=str(uuid.uuid4()))
        adapter = libvirt_adapter.LibvirtAdapter()
        with line.step('Provision the NIC once, cable out (red)') as s:
            endpoint = vif_plug_dyn.request_endpoint(
                port, adapter.accepted_types(), connected=False)
            # NOTE(vpd): XML the library just generated, not input.
            xml = minidom.parseString(  # noqa: S318
                adapter.interface_config(endpoint, link_up=False)
            ).toprettyxml(indent='  ')
            xml = '\n'.join(x for x in xml.splitlines()[1:] if x.strip())
            line.say('libvirt accepts %s; red gave a %s endpoint on tap %s'
                     % (', '.join(adapter.accepted_types()), endpoint.type,
                        endpoint.tap))  # type: ignore[attr-defined]
            for text in xml.splitlines():
                line.say('  ' + text)
            s.details.update(endpoint=endpoint.to_primitive(),
                             interface_xml=xml)

        with line.step('An impossible request fails early') as s:
            other = ports.Port(port_id=str(uuid.uuid4()),
                               mac='52:54:00:de:00:02', network='red')
            try:
                vif_plug_dyn.request_endpoint(other, ['hostdev'])
            except exception.NoMatchingEndpointType as exc:
                line.say('refused: %s' % exc)
                s.details['error'] = str(exc)
            else:
                raise RuntimeError('a hostdev request on red succeeded')

        tap = endpoint.tap  # type: ignore[attr-defined]
        with line.step('Boot the guest with its cable out') as s:
            guest = box.popen(alpha, [sys.executable, '-m',
                                      'vif_plug_dyn.demo.tapguest', '--tap',
                                      tap, '--mac', GUEST_MAC, '--ip',
                                      '198.51.100.10'])
            assert guest.stdout is not None
            if guest.stdout.readline().strip() != 'READY':
                raise RuntimeError('the stand-in guest did not start')
            s.details['tap_master'] = self._master(box, alpha, tap)
            line.say('the guest NIC exists; its tap %s is on no bridge'
                     % tap)
            if s.details['tap_master'] is not None:
                raise RuntimeError('the cable was not out')

        with line.step('Plug the cable into red') as s:
            vif_plug_dyn.connect(port.port_id)
            box.run(alpha, ['ip', 'addr', 'add', '198.51.100.2/24', 'dev',
                            'br-red'])
            reached = self._ping(box, alpha, '198.51.100.10')
            line.say('tap %s is on %s; ping from br-red: %s' % (
                tap, self._master(box, alpha, tap),
                'answered' if reached else 'LOST'))
            if not reached:
                raise RuntimeError('no traffic on red')

        with line.step('Move the cable to blue') as s:
            started = time.monotonic()
            vif_plug_dyn.connect(port.port_id, 'blue')
            s.details['move_seconds'] = time.monotonic() - started
            reached = self._ping(box, lan, '198.51.100.10')
            line.say('tap %s steered to macvlan %s on uplink0; ping from '
                     'the lan: %s' % (tap, port.macvlan_name,
                                      'answered' if reached else 'LOST'))
            if not reached:
                raise RuntimeError('no traffic on blue')

        with line.step("Blue's lower device disappears") as s:
            box.run(alpha, ['ip', 'link', 'set', 'uplink0', 'netns', lan])
            health = self._wait_health(mgr, port.port_id, 'degraded')
            reached = self._ping(box, lan, '198.51.100.10')
            line.say('uplink0 gone, its macvlan with it; the watcher marks '
                     'the port %s; ping: %s' % (
                         health, 'answered' if reached
                         else 'lost, as it must be'))
            s.details.update(health=health, reached_while_gone=reached)

        with line.step('It comes back: blue heals') as s:
            box.run(lan, ['ip', 'link', 'set', 'uplink0', 'netns', alpha])
            started = time.monotonic()
            box.run(alpha, ['ip', 'link', 'set', 'uplink0', 'up'])
            health = self._wait_health(mgr, port.port_id, 'ok')
            s.details['heal_seconds'] = time.monotonic() - started
            reached = self._ping(box, lan, '198.51.100.10')
            line.say('the watcher saw uplink0 return and rebuilt the '
                     'macvlan in %.0f ms (port %s); ping from the lan: %s'
                     % (s.details['heal_seconds'] * 1000, health,
                        'answered' if reached else 'LOST'))
            if not reached or health != 'ok':
                raise RuntimeError('blue did not heal')

        if self.ovs is not None:
            with line.step('Move the cable to green (Open vSwitch)') as s:
                vif_plug_dyn.connect(port.port_id, 'green')
                box.run(alpha, ['ip', 'addr', 'add', '198.51.100.3/24',
                                'dev', 'br-green'])
                box.run(alpha, ['ip', 'link', 'set', 'br-green', 'up'])
                ids = self.ovs.vsctl('get', 'Interface', tap,
                                     'external_ids').strip()
                reached = self._ping(box, alpha, '198.51.100.10')
                line.say('tap %s is an OVS port (%s); ping from br-green: '
                         '%s' % (tap, ids, 'answered' if reached
                                 else 'LOST'))
                s.details['external_ids'] = ids
                if not reached:
                    raise RuntimeError('no traffic on green')
        else:
            line.say('Open vSwitch is not installed: green is skipped')

        with line.step('Request blue on host beta (CLI)') as s:
            beta = box.namespace('beta')
            beta_conf = self._conf('beta', None, {'blue': BLUE_ON_BETA})
            result = box.run(beta, [
                sys.executable, '-m', 'vif_plug_dyn.cmd.cli',
                '--state-path', beta_conf[opts.GROUP].state_path,
                '--network-dir', beta_conf[opts.GROUP].network_dir,
                '--json', 'endpoint', 'request', '--port-id', port.port_id,
                '--mac', port.mac, '--network', 'blue', '--types',
                ','.join(adapter.accepted_types())], check=False)
            if result.returncode != 0:
                raise RuntimeError('beta refused: %s' % result.stderr)
            dest = json.loads(result.stdout)
            line.say('beta answered with its own kind of endpoint for '
                     'blue: %s (tap %s on br-blue)' % (
                         dest['vpd.name'], dest['vpd.data'].get('tap')))
            s.details['beta_endpoint'] = dest
            box.run(beta, [sys.executable, '-m', 'vif_plug_dyn.cmd.cli',
                           '--state-path',
                           beta_conf[opts.GROUP].state_path,
                           '--network-dir',
                           beta_conf[opts.GROUP].network_dir,
                           'endpoint', 'release', port.port_id])

        with line.step('Unplug and release') as s:
            vif_plug_dyn.disconnect(port.port_id)
            vif_plug_dyn.release_endpoint(port.port_id)
            names = [link['ifname'] for link in json.loads(
                box.run(alpha, ['ip', '-j', 'link', 'show']).stdout)]
            left = [n for n in names if n.startswith(('vpd', 'vpm', 'br-'))]
            s.details['left_on_alpha'] = left
            if left:
                raise RuntimeError('left behind: %s' % left)
            mgr.close()


def main(argv: list[str] | None = None) -> int:
    """Run the demo; ``--json`` prints the timeline as JSON at the end."""
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = '--json' in args
    if os.geteuid() != 0:
        sys.stderr.write('the demo needs root (it creates network '
                         'namespaces)\n')
        return 1
    story = Story(out=sys.stderr if as_json else sys.stdout)
    ok = story.run()
    if as_json:
        json.dump({'ok': ok, 'steps': story.line.to_json()}, sys.stdout,
                  indent=2, default=str)
        sys.stdout.write('\n')
    else:
        sys.stdout.write(story.line.summary())
        sys.stdout.write('\n%s\n' % ('Every step succeeded; nothing was '
                                     'left behind.' if ok else
                                     'The story did not finish.'))
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
