"""The live backend: host interface definitions applied to the running
host through the privileged helper.

:class:`LiveBackend` reads the host (:meth:`LiveBackend.state`, one
privileged call for every link and address), runs the plans of
:mod:`.plan` one step — one privileged batch — at a time
(:meth:`LiveBackend.execute`), puts a snapshot back
(:meth:`LiveBackend.restore`, see :mod:`.restore`) and describes live
devices (:meth:`LiveBackend.dump_live`, see :mod:`.inspect`).

Transactions and the automatic rollback of a failed apply are built on
these by :mod:`vif_plug_dyn.hostif.api`.
"""

import logging
from collections.abc import Callable
from typing import Any

from vif_plug_dyn import exception
from vif_plug_dyn import host as host_mod
from vif_plug_dyn.hostif import inspect
from vif_plug_dyn.hostif import model
from vif_plug_dyn.hostif import plan as plan_mod
from vif_plug_dyn.hostif import restore as restore_mod
from vif_plug_dyn.hostif import state as state_mod
from vif_plug_dyn.privsep import ops

LOG = logging.getLogger(__name__)

#: Called before each step: (action, step number from 0, step name).
StepHook = Callable[[str, int, str], None]


class LiveBackend:
    """Applies host interface plans through a :class:`~vif_plug_dyn.host.
    HostNetwork`.

    :param host: the privileged helper's facade.
    :param step_hook: called before each privileged batch of a plan with
        (action, step number, step name); an exception it raises fails
        the apply at that point (tests inject failures this way, tools can
        trace progress).
    """

    def __init__(self, host: host_mod.HostNetwork,
                 step_hook: StepHook | None = None) -> None:
        self.host = host
        self.step_hook = step_hook

    # -- reading -----------------------------------------------------------

    def state(self) -> state_mod.HostState:
        """Read every link and address of the host, once the kernel has
        finished the link-state work pending on them (a bridge that just
        got its carrier gets its link-local address now, not a moment
        after the read)."""
        return state_mod.HostState.from_dump(self.host.dump_state(
            sync=True))

    def dump_live(self, name: str) -> model.HostInterface:
        """A live device as a definition (see :mod:`.inspect`).

        :raises DeviceNotFound: no such device.
        """
        return inspect.dump_live(name, self.state())

    def dump_live_xml(self, name: str) -> str:
        """A live device as libvirt XML with link states.

        :raises DeviceNotFound: no such device.
        """
        return inspect.dump_live_xml(name, self.state())

    # -- planning ------------------------------------------------------------

    def plan_start(self, definition: model.HostInterface,
                   live: state_mod.HostState | None = None
                   ) -> plan_mod.Plan:
        """Plan starting ``definition`` (see :func:`.plan.plan_start`)."""
        return plan_mod.plan_start(definition, live or self.state())

    def plan_stop(self, definition: model.HostInterface,
                  live: state_mod.HostState | None = None) -> plan_mod.Plan:
        """Plan stopping ``definition`` (see :func:`.plan.plan_stop`)."""
        return plan_mod.plan_stop(definition, live or self.state())

    # -- applying ----------------------------------------------------------

    def execute(self, plan: plan_mod.Plan) -> None:
        """Run a plan's steps, one privileged batch each, in order.

        Each batch stops at its first error, and the helper removes what
        that batch created; undoing earlier steps is the caller's job
        (:meth:`restore` with the snapshot the plan was made from).

        :raises HostInterfaceStepFailed: a step failed (its number, name
            and the typed error of the operation that failed, as
            ``__cause__``).
        """
        for number, step in enumerate(plan.steps):
            try:
                if self.step_hook is not None:
                    self.step_hook(plan.action, number, step.name)
                results = self.host.apply(step.ops, stop_on_error=True)
            except Exception as exc:
                # NOTE(vpd): the daemon's error, or the hook's: either way
                # this step did not complete.
                raise exception.HostInterfaceStepFailed(
                    number=number, step=step.name, reason=str(exc)) from exc
            for result in results:
                error = ops.error_from_result(result)
                if error is not None:
                    raise exception.HostInterfaceStepFailed(
                        number=number, step=step.name,
                        reason=str(error)) from error
            LOG.debug('%s %s: step %d (%s) applied %d operations',
                      plan.action, plan.definition, number, step.name,
                      len(step.ops))

    def restore(self, snapshot: state_mod.HostState) -> dict[str, Any]:
        """Put the host back as ``snapshot`` had it (see :mod:`.restore`).

        Best effort: every phase runs even when one operation fails, and
        what could not be restored is reported.

        :returns: ``restored`` (true when nothing differs any more and
            nothing was beyond reach),
            ``errors`` (operations that failed), ``unrestorable`` (what
            cannot be put back) and ``differences`` (what still differs).
        """
        errors: list[str] = []
        unrestorable: list[str] = []
        within = restore_mod.scope(snapshot, self.state())
        for planner in (restore_mod.plan_structure, restore_mod.plan_state,
                        restore_mod.plan_finish):
            phase = planner(snapshot, self.state())
            unrestorable.extend(phase.unrestorable)
            if not phase.ops:
                continue
            try:
                results = self.host.apply(phase.ops, stop_on_error=False)
            except exception.VifPlugDynException as exc:
                errors.append(str(exc))
                continue
            for result in results:
                error = ops.error_from_result(result)
                if error is not None:
                    errors.append(str(error))
        remaining = restore_mod.differences(snapshot, self.state(), within)
        if errors or remaining or unrestorable:
            LOG.warning('Restoring host interfaces left differences: %s',
                        '; '.join(errors + unrestorable + remaining))
        return {'restored': not remaining and not unrestorable,
                'errors': errors, 'unrestorable': unrestorable,
                'differences': remaining}
