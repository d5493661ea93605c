"""The mails the code sends and the placeholders it fills in (rules/mail_templates.yaml words them).

A leaf, like rules/actions.py: rules/policy.py checks the template rows against it — an
unknown ``{placeholder}`` or a missing required one names the file and line — and
rules/mail.py renders them."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import yaml

PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class MailTemplate:
    """What the code gives a template (``provided``) and what its text must show (``required``);
    ``subject`` False for a piece of a mail (a line, an appendix) that has no subject."""

    provided: frozenset[str]
    required: frozenset[str] = frozenset()
    subject: bool = True


def _t(provided: str, required: str = "", subject: bool = True) -> MailTemplate:
    return MailTemplate(frozenset(provided.split()), frozenset(required.split()), subject)


_SUB_ID = "company agent_company name activation_url chamber_code sub_id expires_at activation_hours signer_name"
_NACCS_RECEIVED = "office family_name what receipt_number desired"

TEMPLATES: dict[str, MailTemplate] = {
    # eco-sub-id: the signer may edit subject and body of this notice, with the same placeholders
    "subaccount.notice": _t(_SUB_ID, "activation_url chamber_code sub_id"),
    # appended when an edited notice dropped the link: the link, chamber code and sub-ID always reach the recipient
    "subaccount.notice_essentials": _t(_SUB_ID, "activation_url chamber_code sub_id", subject=False),
    "application.hold": _t("receipt_number reason", "receipt_number reason"),
    "application.approved": _t("receipt_number", "receipt_number"),
    "application.issued": _t("receipt_number certificate_number", "receipt_number certificate_number"),
    "coupon.order": _t("company order_number lines amount bank_name bank_code branch_name branch_code account_number "
                       "holder valid_until", "order_number amount bank_name branch_name account_number holder valid_until"),
    "coupon.order_line": _t("name price quantity", subject=False),
    "coupon.issued_by_transfer": _t("order_number coupons", "order_number coupons"),
    "coupon.issued_by_card": _t("order_number amount payment_number coupons", "order_number coupons"),
    "naccs.user_code_addition.received": _t(_NACCS_RECEIVED, "receipt_number"),
    "naccs.certificate_reissue.received": _t(_NACCS_RECEIVED, "receipt_number"),
    "naccs.clarification": _t("receipt_number message", "receipt_number message"),
    "naccs.approved": _t("receipt_number start_date viewable_until", "receipt_number start_date"),
    "naccs.reissued": _t("receipt_number terminals", "receipt_number terminals"),
    "webhook.endpoint_disabled": _t("url reason reason_ja disabled_at", "url reason reason_ja"),
    # issue 20: an account's API keys revoked with its password (to the account's own address)
    "api_key.revoked_password_changed": _t("name username keys revoked_at", "keys"),
    "api_key.revoked_password_reset": _t("name username keys revoked_at", "keys"),
}


def _mapping(node: yaml.Node | None, key: str) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode) and k.value == key:
                found: yaml.Node = v
                return found
    return None


def _item(node: yaml.Node | None, index: int) -> yaml.Node | None:
    if isinstance(node, yaml.SequenceNode) and index < len(node.value):
        found: yaml.Node = node.value[index]
        return found
    return None


def _line_of(node: yaml.Node | None, value: str, at: int) -> int | None:
    """The 1-based file line of character ``at`` of a scalar's value."""
    if not isinstance(node, yaml.ScalarNode):
        return None
    first = node.start_mark.line + 1
    if node.style in ("|", ">"):  # the text starts on the line after the indicator
        return first + 1 + value[:at].count("\n")
    return first


def check_templates(text: str, versions: Sequence[Sequence[Mapping[str, object]]]) -> list[tuple[str, str]]:
    """Problems of validated mail_templates rows as (where, message): ``where`` names the line,
    version and row. ``versions`` are the rows of each version, in file order."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        root = None
    problems: list[tuple[str, str]] = []
    for v, rows in enumerate(versions):
        version_node = _item(_mapping(root, "versions"), v)
        for r, row in enumerate(rows):
            name = str(row.get("template"))
            row_node = _item(_mapping(version_node, "rows"), r)
            spec = TEMPLATES.get(name)
            where = f"version {v + 1}, row {r + 1} (template={name})"
            if spec is None:
                line = row_node.start_mark.line + 1 if row_node is not None else None
                problems.append((f"line {line}, {where}" if line else where,
                                 f"unknown template {name!r}; the code sends: {', '.join(sorted(TEMPLATES))}"))
                continue
            if spec.subject and not row.get("subject"):
                problems.append((where, "a subject (件名) is required for this mail"))
            seen: set[str] = set()
            for field in ("subject", "body"):
                value = row.get(field)
                if not isinstance(value, str):
                    continue
                field_node = _mapping(row_node, field)
                for match in PLACEHOLDER.finditer(value):
                    seen.add(match.group(1))
                    if match.group(1) not in spec.provided:
                        line = _line_of(field_node, value, match.start())
                        problems.append((
                            f"line {line}, {where}, {field}" if line else f"{where}, {field}",
                            f"unknown placeholder {{{match.group(1)}}}; this mail can use: "
                            + ", ".join(f"{{{p}}}" for p in sorted(spec.provided)),
                        ))
            missing = sorted(spec.required - seen)
            if missing:
                line = row_node.start_mark.line + 1 if row_node is not None else None
                problems.append((f"line {line}, {where}" if line else where,
                                 "the mail must show " + ", ".join(f"{{{p}}}" for p in missing)))
        names = {str(row.get("template")) for row in rows}
        for name in sorted(set(TEMPLATES) - names):
            problems.append((f"version {v + 1}", f"no row for template={name}: every mail the code sends needs its words"))
    return problems


def fill(template: str, values: dict[str, str]) -> str:
    """Replace each ``{placeholder}`` with its value; braces around anything else stay as typed."""
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)
