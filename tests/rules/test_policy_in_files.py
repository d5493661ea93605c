"""Policy that used to be Python now lives in the rule files (issue 13): the sub-ID activation
window and the card session's minutes (limits.yaml), and the words of every mail
(mail_templates.yaml, checked so that an unknown placeholder names its file and line). The live
tests edit a copy of rules/ and hand it to the running server; on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from rules.policy import RulesInvalid, load_policy
from rules.runtime import RulesRuntime
from tests.identity.test_subaccounts import as_user, create_sub, notify
from tests.payments.test_card_payments import GOOD, card_start, pay, purchase_node


def edited(rules_dir: Path, target: Path, file: str, old: str, new: str) -> Path:
    """A copy of ``rules_dir`` with ``old`` replaced by ``new`` (once) in ``file``."""
    shutil.copytree(rules_dir, target)
    path = target / file
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} is not once in {file}"
    path.write_text(text.replace(old, new), encoding="utf-8")
    return target


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if needle in line)


# --------------------------------------------------------------------------- mail templates, validated


def test_an_unknown_placeholder_names_the_file_and_its_line(rules_copy, tmp_path):
    rules = edited(rules_copy, tmp_path / "r", "mail_templates.yaml", "理由: {reason}", "理由: {reason} 担当: {officer}")
    with pytest.raises(RulesInvalid) as raised:
        load_policy(rules)
    [problem] = raised.value.problems
    assert problem.file == "mail_templates.yaml"
    assert f"line {line_of(rules / 'mail_templates.yaml', '担当: {officer}')}," in problem.where
    assert "template=application.hold" in problem.where and "{officer}" in problem.message and "{reason}" in problem.message


def test_an_unknown_placeholder_in_a_subject_names_its_line(rules_copy, tmp_path):
    rules = edited(rules_copy, tmp_path / "r", "mail_templates.yaml",
                   'subject: "【NACCS】申込内容の確認のお願い"', 'subject: "【NACCS】{office_name} 申込内容の確認のお願い"')
    with pytest.raises(RulesInvalid) as raised:
        load_policy(rules)
    [problem] = raised.value.problems
    assert problem.where.startswith(f"line {line_of(rules / 'mail_templates.yaml', '{office_name}')},")
    assert "subject" in problem.where and "{office_name}" in problem.message


def test_a_mail_that_drops_a_required_placeholder_is_refused(rules_copy, tmp_path):
    rules = edited(rules_copy, tmp_path / "r", "mail_templates.yaml",
                   "受付番号 {receipt_number} の証明書を交付しました。", "証明書を交付しました。")
    with pytest.raises(RulesInvalid) as raised:
        load_policy(rules)
    [problem] = raised.value.problems
    assert "template=application.issued" in problem.where and "{receipt_number}" in problem.message


def test_every_mail_the_code_sends_needs_a_row(rules_copy, tmp_path):
    rules = edited(rules_copy, tmp_path / "r", "mail_templates.yaml", "template: naccs.reissued", "template: naccs.reissue")
    with pytest.raises(RulesInvalid) as raised:
        load_policy(rules)
    messages = [str(p) for p in raised.value.problems]
    assert any("unknown template 'naccs.reissue'" in m for m in messages)
    assert any("no row for template=naccs.reissued" in m for m in messages)


# --------------------------------------------------------------------------- limits and mails, live


async def test_the_activation_window_and_the_notice_come_from_the_rules(live, tmp_path):
    from tests.identity.test_subaccounts import mailed_token

    signer = as_user(live, "signer-2701000002")
    full = live.services.rules
    rules = edited(live.rules_dir, tmp_path / "r", "limits.yaml", "limit: subaccount_activation_hours\n        value: 72",
                   "limit: subaccount_activation_hours\n        value: 48")
    mail_rules = rules / "mail_templates.yaml"
    mail_rules.write_text(mail_rules.read_text(encoding="utf-8").replace(
        "有効化後、システムへのログインが可能となります。", "有効化後、ログインできます。"), encoding="utf-8")
    live.services.rules = RulesRuntime(rules)
    try:
        sub = create_sub(live, signer)
        notified = notify(live, signer, sub["id"])["data"]["notifySubAccount"]["account"]
        expires = dt.datetime.fromisoformat(notified["activationExpiresAt"])
        assert expires - dt.datetime.fromisoformat(notified["notifiedAt"]) == dt.timedelta(hours=48)
        _token, message = await mailed_token(live)
        body = message.get_content()
        assert message["Subject"] == "【貿易関係証明発給システム】サブID付与のお知らせ"
        assert "メール送信後48時間です" in body and "有効化後、ログインできます。" in body
    finally:
        live.services.rules = full


async def test_a_signers_own_notice_keeps_its_placeholders_and_gets_the_essentials(live):
    from tests.identity.test_subaccounts import mailed_token

    signer = as_user(live, "signer-2701000002")
    sub = create_sub(live, signer)
    sent = notify(live, signer, sub["id"], subject="{name} 様へ", body="{company} {name} 様: {activation_hours}時間以内に {unknown}")
    assert sent["data"]["notifySubAccount"]["errors"] == []
    _token, message = await mailed_token(live)
    body = message.get_content()
    assert message["Subject"] == "山田 花子 様へ"
    assert body.startswith("加古川自然食品 山田 花子 様: 72時間以内に {unknown}")  # braces not ours stay as typed
    assert re.search(r"確認サイト: http://127\.0\.0\.1:\d+/activate\?token=\S+\n商工会議所コード: 2701\nサブID: ", body)


def test_the_card_page_says_the_session_minutes_of_the_rules(live, tmp_path):
    signer = as_user(live, "signer-2701000002")
    full = live.services.rules
    live.services.rules = RulesRuntime(edited(live.rules_dir, tmp_path / "r", "limits.yaml",
                                              "limit: card_session_minutes\n        value: 5",
                                              "limit: card_session_minutes\n        value: 7"))
    try:
        purchase = card_start(live, signer)
        url = purchase_node(live, signer, purchase["id"])["paymentUrl"]
        live.clock.advance(dt.timedelta(minutes=6))
        assert pay(url, {**GOOD, "card_number": "4000000000000002"}).status_code == 402  # still open after 6 minutes
        live.clock.advance(dt.timedelta(minutes=1, seconds=1))
        late = pay(url, GOOD)
        assert late.status_code == 410 and 'data-code="SESSION_EXPIRED"' in late.text
        assert "決済の有効期限 (7分) を過ぎました" in late.text
    finally:
        live.services.rules = full
