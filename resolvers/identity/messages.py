"""Words of identity a user reads: the sub-ID notice mail and the field labels of
registrations and sub-IDs. Templates take named ``{placeholders}``."""

from __future__ import annotations

from typing import Final

# eco-sub-id: the default notice; the signer may edit subject and body (same placeholders)
SUB_ID_NOTICE_SUBJECT: Final = "【貿易関係証明発給システム】サブID付与のお知らせ"
SUB_ID_NOTICE_BODY: Final = """{company} {name} 様

貿易関係証明発給システムのサブIDが付与されました。
下記確認サイトへアクセスし、サブIDおよびパスワードを入力して、サブIDを有効化(アクティベート)してください。
有効化後、システムへのログインが可能となります。

・確認サイト: {activation_url}
・商工会議所コード: {chamber_code}
・サブID: {sub_id}
・パスワード: 通知者にご確認ください。
※上記URLの有効期限はメール送信後3日(72時間)です({expires_at}まで)。

通知者: {signer_name}
"""
# added when an edited body dropped the link: the link, chamber code and sub-ID always reach the recipient
SUB_ID_NOTICE_ESSENTIALS: Final = "\n\n確認サイト: {activation_url}\n商工会議所コード: {chamber_code}\nサブID: {sub_id}\n"
EXPIRES_AT_FORMAT: Final = "%Y-%m-%d %H:%M JST"

# field labels (the {label} of an error message)
SUBJECT: Final = "件名"
BODY: Final = "本文"
REGISTRATION_NAME: Final = "名称"
CONTACT_EMAIL: Final = "連絡担当者E-mail"
ADMIN_NAME: Final = "管理者名"
ADMIN_EMAIL: Final = "管理者E-mail"
PERSON_NAME: Final = "氏名"
REASON: Final = "理由"
USERNAME: Final = "ID"
USERNAME_TAKEN: Final = "ID(既に使われています)"
