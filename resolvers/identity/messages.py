"""Words of identity a user reads: the sub-ID notice mail and the field labels of
registrations and sub-IDs. Templates take named ``{placeholders}``."""

from __future__ import annotations

from typing import Final

from resolvers.core.messages import Words

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
SUBJECT: Final = Words("件名", "Subject")
BODY: Final = Words("本文", "Body")
REGISTRATION_NAME: Final = Words("名称", "Name")
CONTACT_EMAIL: Final = Words("連絡担当者E-mail", "Contact person's e-mail")
ADMIN_NAME: Final = Words("管理者名", "Administrator's name")
ADMIN_EMAIL: Final = Words("管理者E-mail", "Administrator's e-mail")
PERSON_NAME: Final = Words("氏名", "Name")
REASON: Final = Words("理由", "Reason")
USERNAME: Final = Words("ID", "ID")
PURCHASE_METHODS: Final = Words("購入方法", "Payment methods")
USERNAME_TAKEN: Final = Words("ID(既に使われています)", "ID (already taken; choose another)")
