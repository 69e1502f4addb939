#!/usr/bin/env python3
"""A controller: plug a port on every host named through its agent, move
the first host's port to another network, release them, and print the
notifications the agents sent.

    python3 controller.py --transport-url rabbit://user:pass@bus:5672/ \\
        hosta hostb

Run it where the message bus is reachable (any machine of the
deployment's management network); it needs only the vif_plug_dyn
package. Each host must define the network (``--network``, default
``red``); the first must also define ``--move-to`` (default ``blue``).
"""

import argparse
import secrets
import sys
import threading
import time
import uuid

from oslo_config import cfg

from vif_plug_dyn import agent
from vif_plug_dyn import ports
from vif_plug_dyn import rpc


class Notifications:
    """Everything the agents announce, in arrival order."""

    def __init__(self):
        self.received = []
        self.lock = threading.Lock()

    def info(self, ctxt, publisher_id, event_type, payload, metadata):
        with self.lock:
            self.received.append((event_type, payload))

    warn = info

    def count(self, event_type):
        with self.lock:
            return sum(1 for e, _p in self.received if e == event_type)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--transport-url', required=True)
    parser.add_argument('--network', default='red')
    parser.add_argument('--move-to', default='blue')
    parser.add_argument('--timeout', type=float, default=60.0)
    parser.add_argument('hosts', nargs='+')
    args = parser.parse_args()

    conf = cfg.ConfigOpts()
    conf([], default_config_files=[])
    transport = rpc.get_transport(conf, url=args.transport_url)
    # oslo.messaging as vif_plug_dyn.rpc imported it (without eventlet's
    # import-time warning), for the notification listener
    oslo_messaging = rpc.oslo_messaging
    notes = Notifications()
    listener = oslo_messaging.get_notification_listener(
        oslo_messaging.get_notification_transport(
            conf, url=args.transport_url),
        [oslo_messaging.Target(topic=agent.NOTIFICATION_TOPIC)], [notes],
        pool='controller-' + secrets.token_hex(4))
    listener.start()

    clients = [rpc.AgentClient(host, conf, transport=transport,
                               timeout=args.timeout) for host in args.hosts]
    plugged = {}
    for n, client in enumerate(clients):
        print('%s offers %s' % (client.host, ', '.join(sorted(
            client.capabilities()['networks']))))
        port = ports.Port(port_id=str(uuid.uuid4()),
                          mac='52:54:00:c0:00:%02x' % (n + 1),
                          network=args.network)
        [endpoint] = client.request_endpoints([port], ['ethernet'])
        plugged[client.host] = port
        print('%s: port %s on %s -> %s endpoint, tap %s' % (
            client.host, port.port_id, args.network, endpoint.type,
            endpoint.tap))
    first = clients[0]
    moved = first.connect(plugged[first.host].port_id, args.move_to)
    print('%s: port %s moved to %s (tap %s)' % (
        first.host, moved.port_id, moved.network, moved.tap))
    for client in clients:
        client.release_endpoints([plugged[client.host].port_id])
        print('%s: port %s released' % (client.host,
                                         plugged[client.host].port_id))

    # one plugged per host and one for the move; one unplugged per host
    deadline = time.monotonic() + args.timeout
    while (notes.count(agent.EVENT_PLUGGED) < len(clients) + 1 or
           notes.count(agent.EVENT_UNPLUGGED) < len(clients)):
        if time.monotonic() > deadline:
            print('timed out waiting for notifications', file=sys.stderr)
            return 1
        time.sleep(0.1)
    listener.stop()
    listener.wait()
    print('notifications received:')
    for event_type, payload in notes.received:
        print('  %-28s host=%s port=%s network=%s took_ms=%s' % (
            event_type, payload['host'], payload['port_id'],
            payload['network'], payload['timings'].get('took_ms')))
    transport.cleanup()
    return 0


if __name__ == '__main__':
    sys.exit(main())
