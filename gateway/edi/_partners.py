"""Trading-partner profiles: who may send which interchanges, and their code tables.

``edi-partners.yaml`` (``RGW_EDI_PARTNERS_FILE``) binds the ISA and GS sender ids (X12)
and the UNB sender ids (EDIFACT) a partner's translator uses to the partner (the tenant its
API keys belong to), and holds the tables that turn its codes into canonical ones. It is
read and checked once at start-up; a defect stops the gateway with every problem named.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import msgspec
import yaml

from gateway.errors import ConfigurationError


class PartnerProfileError(ConfigurationError):
    """``edi-partners.yaml`` is missing, malformed, or binds one sender id to two partners."""


class ItemSource(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One way to find our SKU among a line's item ids (``BLI01``/``BLI02`` pairs)."""

    qualifier: str
    """Item id qualifier (235): ``VN`` vendor's (our) item number, ``BP`` buyer's part, ``UP`` U.P.C."""
    table: dict[str, str] | None = None
    """Partner id → our SKU; without a table the id is our SKU as sent."""


class ResponseEndpoint(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Where the partner takes X12 back over HTTP (its AS2 or VAN gateway's HTTP inbox)."""

    url: str
    token_env: str | None = None
    """Environment variable holding a bearer token for it; secrets never sit in this file."""


class Partner(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One trading partner."""

    interchange_ids: list[str]
    """ISA05:ISA06 pairs it sends as (``ZZ:NORDWIND``); an id without qualifier matches any."""
    customer_account: str
    """Its customer number in the ERP, unless the 180 names the buyer (``N1*BY``)."""
    currency: str
    """Currency of the prices it sends (the 180 carries none)."""
    group_ids: list[str] = []
    """GS02 application sender codes it uses; empty accepts any."""
    receiver_ids: list[str] = []
    """ISA07:ISA08 pairs that are us for this partner; empty accepts any."""
    edifact_ids: list[str] = []
    """UNB sender ids it sends EDIFACT as, written as in the UNB: ``0004:0007`` (``NORDWIND:ZZ``)
    or ``0004`` alone, which matches any qualifier."""
    edifact_receiver_ids: list[str] = []
    """UNB recipient ids (``0010:0007``) that are us for this partner; empty accepts any."""
    items: list[ItemSource] = msgspec.field(default_factory=lambda: [ItemSource("VN")])
    """Where the SKU comes from, in order of preference."""
    reasons: dict[str, str] = {}
    """RDR02 return reason → canonical ``reason_code``; only these reasons are accepted."""
    units: dict[str, str] = {}
    """BLI04 unit → canonical unit of measure; only these units are accepted."""
    responses: ResponseEndpoint | None = None
    """Where 180 responses (authorizations, denials) are posted; without, the partner fetches
    them over the API (``GET /v1/edi/x12/returns/{id}/responses``)."""

    def sends_as(self, qualifier: str, sender: str) -> bool:
        return f"{qualifier}:{sender}" in self.interchange_ids or sender in self.interchange_ids

    def addresses(self, qualifier: str, receiver: str) -> bool:
        ids = self.receiver_ids
        return not ids or f"{qualifier}:{receiver}" in ids or receiver in ids

    def sends_edifact_as(self, sender: str, qualifier: str) -> bool:
        return f"{sender}:{qualifier}" in self.edifact_ids or sender in self.edifact_ids

    def addresses_edifact(self, recipient: str, qualifier: str) -> bool:
        ids = self.edifact_receiver_ids
        return not ids or f"{recipient}:{qualifier}" in ids or recipient in ids

    def code_lists(self) -> dict[str, frozenset[str]]:
        """The element codes its tables allow, for the structure check (``RDR02``, ``BLI04``...)."""
        lists: dict[str, frozenset[str]] = {}
        if self.reasons:
            lists["RDR02"] = frozenset(self.reasons)
        if self.units:
            lists["BLI04"] = lists["QTY03"] = frozenset(self.units)
        return lists

    def sku(self, item_ids: Mapping[str, str]) -> str | None:
        """Our SKU for a line's item ids, or ``None`` when no source knows the item."""
        for source in self.items:
            value = item_ids.get(source.qualifier)
            if value is None:
                continue
            found = value if source.table is None else source.table.get(value)
            if found is not None:
                return found
        return None


class _File(msgspec.Struct, forbid_unknown_fields=True):
    partners: dict[str, Partner]


class PartnerDirectory:
    """Every partner, found by the sender id of an interchange."""

    def __init__(self, partners: Mapping[str, Partner]) -> None:
        self.partners = dict(partners)
        owners: dict[str, str] = {}
        problems = []
        for name, partner in self.partners.items():
            senders = [*partner.interchange_ids, *(f"UNB {i}" for i in partner.edifact_ids)]
            for sender in senders:
                if owners.setdefault(sender, name) != name:
                    problems.append(f"sender id {sender!r} is bound to both {owners[sender]} and {name}")
        if problems:
            raise PartnerProfileError("; ".join(problems))

    @classmethod
    def load(cls, path: Path | None) -> PartnerDirectory:
        """Read ``path``; no file configured means no EDI partners."""
        if path is None:
            return cls({})
        try:
            raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            return cls(msgspec.convert(raw, _File).partners)
        except FileNotFoundError as exc:
            raise PartnerProfileError(f"{path}: no such file") from exc
        except yaml.YAMLError as exc:
            raise PartnerProfileError(f"{path}: not valid YAML: {exc}") from exc
        except msgspec.ValidationError as exc:
            raise PartnerProfileError(f"{path}: {exc}") from exc

    def get(self, name: str) -> Partner | None:
        return self.partners.get(name)

    def sender(self, qualifier: str, sender: str) -> tuple[str, Partner] | None:
        """The partner whose translator sends X12 as ``qualifier:sender``."""
        for name, partner in self.partners.items():
            if partner.sends_as(qualifier, sender):
                return name, partner
        return None

    def edifact_sender(self, sender: str, qualifier: str) -> tuple[str, Partner] | None:
        """The partner whose translator sends EDIFACT as ``sender:qualifier`` (UNB S002)."""
        for name, partner in self.partners.items():
            if partner.sends_edifact_as(sender, qualifier):
                return name, partner
        return None
