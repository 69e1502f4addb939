"""The README's main command: the demo tells its whole story and leaves
nothing behind."""

import json
import os
import subprocess
import sys

import pytest


def test_demo_story_runs_and_cleans_up():
    if os.geteuid() != 0:
        pytest.skip('needs root: the demo creates network namespaces')
    before = subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                            text=True).stdout
    result = subprocess.run([sys.executable, '-m', 'vif_plug_dyn.demo',
                             '--json'], capture_output=True, text=True,
                            timeout=300)
    report = json.loads(result.stdout)
    assert result.returncode == 0, result.stderr[-2000:]
    assert report['ok'] is True
    titles = [step['title'] for step in report['steps']]
    assert 'Move the cable to blue' in titles
    assert all(step['ok'] for step in report['steps'])
    heal = next(s for s in report['steps'] if 'heals' in s['title'])
    assert heal['ok']
    after = subprocess.run(['ip', 'netns', 'list'], capture_output=True,
                           text=True).stdout
    assert 'vpd-demo' not in after
    leftovers = {line.split()[0] for line in after.splitlines()} - {
        line.split()[0] for line in before.splitlines()}
    assert not [n for n in leftovers if n.startswith('vpd-demo')]
