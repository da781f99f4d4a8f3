"""A tally as a table: one per scenario, the same in the benchmark's output and a failing test."""

from __future__ import annotations

from bench.faultlab._tally import SYSTEMS, Tally


def _counts(counts: dict[str, int]) -> str:
    shown = {k: v for k, v in counts.items() if v}
    return ", ".join(f"{k} {v}" for k, v in shown.items()) or "none"


def format_tally(tally: Tally) -> str:
    """The scenario's figures: accepted, then per system, then dead letters and drain time."""
    lines = [
        f"scenario {tally.scenario}",
        f"  accepted            {tally.accepted} of {tally.asked}"
        + (f"  (refused along the way: {_counts(tally.refusals)})" if tally.refusals else ""),
        f"  statuses            {_counts(tally.statuses)}",
        f"  {'system':18}{'delivered':>10}{'duplicates':>12}{'strays':>8}{'replays':>9}{'missing':>9}"
        f"{'faulted':>9}",
    ]
    for system in SYSTEMS:
        replays = str(tally.replays[system]) if system in tally.replays else "-"
        lines.append(
            f"  {system:18}{tally.delivered[system]:>10}{tally.duplicates[system]:>12}"
            f"{tally.strays[system]:>8}{replays:>9}{tally.missing[system]:>9}{tally.faulted[system]:>9}"
        )
    lines += [
        f"  dead letters        {sum(tally.dead_letters.values())} ({_counts(tally.dead_letters)});"
        f" of returns showing no exception: {tally.silent_dead_letters}",
        *(f"    {n:>6}  {reason}" for reason, n in list(tally.dead_letter_reasons.items())[:10]),
        f"  unexpected status   {len(tally.unexpected)}",
        f"  left in queues      {sum(tally.left.values())}",
        f"  drain time          {tally.drain_seconds:.1f} s" + ("" if tally.drained else " (not drained)"),
    ]
    problems = tally.problems()
    lines.append("  verdict             " + ("ok" if not problems else "FAILED"))
    lines += [f"    - {problem}" for problem in problems]
    if tally.events:
        lines.append("  events")
        lines += [f"    {event}" for event in tally.events]
    return "\n".join(lines)
