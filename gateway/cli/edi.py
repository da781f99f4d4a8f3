"""``returns-gateway edi ...``: check an X12 or EDIFACT file offline, or send X12 files to a gateway."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from urllib.parse import unquote

import typer
from rich.console import Console

from gateway.errors import InterchangeUnusable
from gateway.settings import Settings

if TYPE_CHECKING:
    import httpx

    from gateway.edi import Checked, Partner, PartnerDirectory, ReturnNoticeMapper
    from gateway.edi.edifact_retann import EdifactChecked

edi_app = typer.Typer(
    help="EDI: check X12 and EDIFACT interchanges offline, send X12 ones to a gateway.", no_args_is_help=True
)
out = Console()
err = Console(stderr=True)

SEGMENT_CODES = {
    "1": "unrecognized segment id",
    "2": "unexpected segment",
    "3": "mandatory segment missing",
    "4": "loop occurs over maximum times",
    "5": "segment exceeds maximum use",
    "6": "segment not in defined transaction set",
    "7": "segment not in proper sequence",
    "8": "segment has data element errors",
}
ELEMENT_CODES = {
    "1": "mandatory data element missing",
    "2": "conditional required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated",
}
SET_CODES = {
    "1": "transaction set not supported",
    "2": "transaction set trailer missing",
    "3": "control numbers in ST and SE differ",
    "4": "SE01 does not match the segment count",
    "5": "one or more segments in error",
    "7": "missing or invalid transaction set control number",
    "23": "transaction set control number not unique in the group",
}
GROUP_CODES = {
    "1": "functional group not supported",
    "2": "functional group version not supported",
    "3": "functional group trailer missing",
    "4": "control numbers in GS and GE differ",
    "5": "GE01 does not match the number of transaction sets",
    "6": "group control number violates syntax",
}


#: 0085 syntax error codes the CONTRL uses, in words.
SYNTAX_ERRORS = {
    "2": "syntax version or level not supported",
    "7": "interchange recipient not actual recipient",
    "12": "invalid value",
    "13": "missing",
    "14": "value not supported in this position",
    "15": "not supported in this position",
    "26": "duplicate detected",
    "28": "references do not match",
    "29": "control count does not match number of instances received",
}
X12 = "application/edi-x12"
_SEGMENT_END = re.compile(r"(?<!\?)'")


def is_edifact(data: bytes) -> bool:
    """Whether ``data`` starts like an EDIFACT interchange (UNA or UNB) rather than an X12 ISA."""
    return data.removeprefix(b"\xef\xbb\xbf").lstrip()[:3] in (b"UNA", b"UNB")


def _mapper(settings: Settings) -> ReturnNoticeMapper:
    from gateway.edi import ReturnNoticeMapper
    from gateway.mapping import MappingCatalog
    from gateway.registry import ContractRegistry

    catalog = MappingCatalog.load(settings.mappings_dir, settings.contracts_dir, profiles=["edi"])
    contract = ContractRegistry.from_folder(settings.contracts_dir).require("return-request", "v1")
    return ReturnNoticeMapper.from_catalog(catalog, contract)


def _profile(
    partners: PartnerDirectory, partner_name: str | None, by_sender: tuple[str, Partner] | None, sender: str
) -> tuple[str, Partner] | None:
    """The profile named on the command line, else the one the sender id belongs to."""
    found = (partner_name, partners.get(partner_name)) if partner_name else by_sender
    if found is None or found[1] is None:
        err.print(
            f"[yellow]no trading-partner profile for {sender}: "
            "checked against the standard only, not mapped[/]"
        )
        return None
    return found[0], found[1]


@contextmanager
def _exit_2_when_unusable() -> Iterator[None]:
    from gateway.edi import PartnerProfileError

    try:
        yield
    except InterchangeUnusable as exc:
        err.print(f"[red]unusable interchange:[/] {exc.detail}")
        raise typer.Exit(code=2) from exc
    except PartnerProfileError as exc:
        err.print(f"[red]{exc}[/]")
        raise typer.Exit(code=2) from exc


def _check_edifact(data: bytes, partner_name: str | None) -> tuple[EdifactChecked, str | None]:
    from gateway.edi import PartnerDirectory
    from gateway.edi.edifact_retann import check_edifact

    settings = Settings.from_env()
    partners = PartnerDirectory.load(settings.edi_partners_file)
    checked = check_edifact(data)
    ic = checked.interchange
    by_sender = partners.edifact_sender(ic.sender, ic.sender_qualifier)
    found = _profile(partners, partner_name, by_sender, f"UNB sender {ic.sender}:{ic.sender_qualifier}")
    if found is None:
        return checked, None
    name, partner = found
    checked = check_edifact(data, reasons=partner.reasons or None, units=partner.units or None)
    if checked.interchange.error is None and not partner.addresses_edifact(
        ic.receiver, ic.receiver_qualifier
    ):
        checked.interchange.error = ("7", "UNB")
        checked.transactions.clear()
    mapper = _mapper(settings)
    for transaction in checked.transactions:
        mapper.apply(transaction, name, partner)
    return checked, name


def _report_edifact(checked: EdifactChecked, name: str | None) -> bool:
    """Print the report and the CONTRL; whether anything was rejected."""
    from rich.table import Table

    from gateway.edi.edifact_contrl import MESSAGE_CODES, SHARED_STEP_TAGS

    ic = checked.interchange
    out.print(
        f"EDIFACT interchange {ic.control} from {ic.sender}:{ic.sender_qualifier} "
        f"to {ic.receiver}:{ic.receiver_qualifier}, syntax {':'.join(ic.syntax[:2])}"
        f"{', test' if ic.test else ''}; partner {name or '(none)'}",
        soft_wrap=True,
    )
    rejected = ic.error is not None
    if ic.error is not None:
        code, tag = ic.error
        out.print(f"[red]interchange rejected[/] (UCI 4): {tag}: 0085 {code} {SYNTAX_ERRORS.get(code, '')}")
    table = Table("message", "reference", "result", "findings")
    notices = {id(t.result): t.notice.get("reference", "") for t in checked.transactions}
    for result in checked.groups[0].sets:
        accepted = result.accepted and ic.error is None
        rejected = rejected or not accepted
        findings = []
        for c in result.errors:
            if c in MESSAGE_CODES:
                code, tag = MESSAGE_CODES[c]
                findings.append(f"{tag}: 0085 {code} {SYNTAX_ERRORS.get(code, '')}")
        for error in result.segment_errors:
            findings.append(f"{error.tag} at {error.position}: {error.detail}")
            findings += [
                f"  element {e.position}{f':{e.ref}' if e.ref else ''} {e.value!r}: 0085 {e.code} "
                f"{SYNTAX_ERRORS.get(e.code, '')}"
                for e in error.elements
                if error.tag not in SHARED_STEP_TAGS  # the shared mapping step's positions are X12's
            ]
        table.add_row(
            f"{result.code} {result.control}",
            str(notices.get(id(result), "")),
            "[green]accepted[/]" if accepted else "[red]rejected[/]",
            "\n".join(findings),
        )
    out.print(table)
    typer.echo("CONTRL:")
    typer.echo(_SEGMENT_END.sub("'\n", checked.ack()), nl=False)
    return rejected


def _check(data: bytes, partner_name: str | None) -> tuple[Checked, str | None]:
    from gateway.edi import PartnerDirectory, check_interchange

    settings = Settings.from_env()
    partners = PartnerDirectory.load(settings.edi_partners_file)
    checked = check_interchange(data)
    interchange = checked.interchange
    by_sender = partners.sender(interchange.sender_qualifier, interchange.sender)
    found = _profile(
        partners, partner_name, by_sender, f"{interchange.sender_qualifier}:{interchange.sender}"
    )
    if found is None:
        return checked, None
    name, partner = found
    checked = check_interchange(data, codes=partner.code_lists())
    mapper = _mapper(settings)
    for transaction in checked.transactions:
        mapper.apply(transaction, name, partner)
    return checked, name


@edi_app.command("validate")
def validate(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="An X12 or EDIFACT interchange.")],
    partner: Annotated[
        str | None, typer.Option(help="Partner profile to use (default: by ISA or UNB sender id).")
    ] = None,
) -> None:
    """Check FILE as the gateway would (envelope, structure, partner codes, mapping, contract), print
    a report and the 997, or the CONTRL for EDIFACT (told apart by the first segment: UNA or UNB);
    exit 1 if any set or message is rejected, 2 if there is nothing to acknowledge."""
    from rich.table import Table

    data = file.read_bytes()
    if is_edifact(data):
        with _exit_2_when_unusable():
            edifact, name = _check_edifact(data, partner)
        if _report_edifact(edifact, name):
            raise typer.Exit(code=1)
        return
    with _exit_2_when_unusable():
        checked, name = _check(data, partner)
    ic = checked.interchange
    out.print(
        f"interchange {ic.control} from {ic.sender_qualifier}:{ic.sender} "
        f"to {ic.receiver_qualifier}:{ic.receiver}, "
        f"version {ic.version}{', test' if ic.test else ''}; partner {name or '(none)'}",
        soft_wrap=True,
    )
    table = Table("group", "set", "reference", "result", "findings")
    notices = {id(t.result): t.notice.get("reference", "") for t in checked.transactions}
    rejected = False
    for group in checked.groups:
        for code in group.errors:
            table.add_row(
                f"{group.functional_id} {group.control}",
                "",
                "",
                "[red]rejected[/]",
                f"AK905 {code}: {GROUP_CODES.get(code, '')}",
            )
            rejected = True
        for result in group.sets:
            accepted = result.accepted and not group.errors
            rejected = rejected or not accepted
            findings = [f"AK502 {c}: {SET_CODES.get(c, '')}" for c in result.errors if c != "5"]
            for error in result.segment_errors:
                findings.append(
                    f"{error.tag} at {error.position}: AK304 {error.code} "
                    f"{SEGMENT_CODES.get(error.code or '', '')}"
                    + (
                        f" ({error.detail})"
                        if error.code == "8" and not error.elements and error.detail
                        else ""
                    )
                )
                findings += [
                    f"  {error.tag}{e.position:02d} ({e.ref or '-'}) {e.value!r}: AK403 {e.code} "
                    f"{ELEMENT_CODES.get(e.code, '')}"
                    for e in error.elements
                ]
            table.add_row(
                f"{group.functional_id} {group.control}",
                f"{result.code} {result.control}",
                str(notices.get(id(result), "")),
                "[green]accepted[/]" if accepted else "[red]rejected[/]",
                "\n".join(findings),
            )
    out.print(table)
    typer.echo("997:")
    typer.echo(checked.ack().replace(ic.delimiters.segment, ic.delimiters.segment + "\n"), nl=False)
    if rejected:
        raise typer.Exit(code=1)


@edi_app.command("submit")
def submit(
    files: Annotated[
        list[Path], typer.Argument(exists=True, dir_okay=False, help="X12 or UN/EDIFACT interchanges.")
    ],
    url: Annotated[str, typer.Option(help="The gateway's base URL.")] = "http://127.0.0.1:8080",
    key: Annotated[str, typer.Option(envvar="RGW_API_KEY", help="API key (returns:write).")] = "",
) -> None:
    """Send each FILE to POST /v1/edi/x12 (or /v1/edi/edifact, told apart by the first segment) and
    print what its 997 (or CONTRL) says, or why it was refused (a control number already used for
    another interchange...); exit 1 unless all were accepted. A test interchange is checked and
    acknowledged without creating returns: its row names those it would have created."""
    import httpx
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Table

    if not key:
        err.print("[red]an API key is required (--key or RGW_API_KEY)[/]")
        raise typer.Exit(code=2)
    rows: list[tuple[str, str, str]] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    failed = False
    with httpx.Client(base_url=url, timeout=60.0) as client, Progress(*columns, console=err) as bar:
        task = bar.add_task("sending", total=len(files))
        for path in files:
            data = path.read_bytes()
            standard, media_type = ("edifact", "application/edifact") if is_edifact(data) else ("x12", X12)
            try:
                response = client.post(
                    f"/v1/edi/{standard}",
                    content=data,
                    headers={"Authorization": f"Bearer {key}", "Content-Type": media_type},
                )
            except httpx.HTTPError as exc:
                rows.append((str(path), "-", f"not sent: {exc}"))
                failed = True
            else:
                summary = _summary(response) if standard == "x12" else _contrl_summary(response)
                accepted = "AK9*A" in summary.replace(" ", "") or (
                    summary.startswith("UCI 7") and "UCM 4" not in summary
                )
                failed = failed or response.status_code != 200 or not accepted
                rows.append((str(path), str(response.status_code), summary))
            bar.advance(task)
    table = Table("file", "status", "answer")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    if failed:
        raise typer.Exit(code=1)


def _contrl_summary(response: httpx.Response) -> str:
    """``UCI 7`` (or 4) and each message's ``UCM`` action, from a CONTRL answer."""
    if response.status_code != 200:
        return _summary(response)
    actions = []
    for segment in (s.strip() for s in _SEGMENT_END.split(response.text)):
        tag, _, rest = segment.partition("+")
        elements = rest.split("+")
        position = {"UCI": 3, "UCM": 2}.get(tag)  # the action code's element in each
        if position is not None and len(elements) > position:
            actions.append(f"{tag} {elements[position].split(':')[0]}")
    return " ".join(actions) + _notes(response)


def _notes(response: httpx.Response) -> str:
    """What the answer's headers add: a replay, a test run and the returns it would have made."""
    notes = " (replayed)" if response.headers.get("idempotent-replayed") else ""
    if response.headers.get("rgw-test-interchange") == "true":
        would = unquote(response.headers.get("rgw-test-returns", "")) or "none"
        notes += f" (test: nothing submitted; would create {would})"
    return notes


def _refusal(response: httpx.Response) -> str:
    """``refused (<problem type>): <detail>``, from a problem+json answer."""
    try:
        problem = response.json()
        kind = str(problem.get("type", "")).rsplit(":", 1)[-1]
        return f"refused ({kind}): {problem.get('detail', '')}" if kind else response.text[:200]
    except (ValueError, AttributeError):
        return response.text[:200]


def _summary(response: httpx.Response) -> str:
    if response.status_code != 200:
        return _refusal(response)
    text = response.text
    element = text[3:4] or "*"
    terminator = text[105:106] or "~"
    segments = [s.strip() for s in text.split(terminator) if s.strip()]
    acks = [s.replace(element, "*") for s in segments if s.startswith(("AK5", "AK9"))]
    return " ".join(acks) + _notes(response)
