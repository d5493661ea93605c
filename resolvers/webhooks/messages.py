"""Words of webhooks a user reads: field labels, states, and what a failed delivery records."""

from __future__ import annotations

from typing import Final

from resolvers.core.messages import Words

# field labels (the {label} of an error message)
URL: Final = Words("URL", "URL")
URL_HTTPS: Final = Words("URL(https://、2048文字以内、ユーザー名・パスワードを含まない)",
                         "URL (https://, at most 2048 characters, no user name or password)")
URL_NOT_ALLOWED: Final = Words(
    "URL(送信先のホストがプライベート・ループバック・リンクローカル等のアドレスです。インターネットから到達できるホストを指定してください)",
    "URL (the host is or resolves to a private, loopback, link-local or otherwise internal address; "
    "use a host reachable from the internet)")
URL_UNRESOLVED: Final = Words("URL(ホスト名を解決できません)", "URL (the host name does not resolve)")
EVENTS: Final = Words("イベント", "Events")
ENDPOINTS: Final = Words("Webhookの送信先", "Webhook endpoints")

# states (INVALID_STATE's {state})
ENDPOINT_DELETED: Final = Words("削除済みの送信先", "a deleted endpoint")

# webhook_deliveries.last_error (read by the registration's developers and by staff)
DESTINATION_NOT_ALLOWED: Final = "destination not allowed"
ENDPOINT_DELETED_ERROR: Final = "endpoint deleted"
RETRY_PERIOD_OVER: Final = "gave up: the retry period is over"
SECRET_UNREADABLE: Final = "the endpoint's secret cannot be unsealed (its key is no longer in TRADECERT_NACCS_KEY_FILE)"

# issue 20: an endpoint the delivery job stopped sending to (failing too long, or 410 Gone)
ENDPOINT_SUSPENDED: Final = Words("送信を停止中の送信先(enableWebhookEndpointで再開してください)",
                                  "a disabled endpoint (enable it again with enableWebhookEndpoint)")
ENDPOINT_SUSPENDED_ERROR: Final = "endpoint disabled"
GONE_REASON: Final = Words("送信先が HTTP 410 (Gone) と応答しました", "the endpoint answered HTTP 410 (Gone)")
FAILING_REASON: Final = Words("{since}以降{days}日間、すべての送信が失敗しました(2xxの応答がありません)",
                              "every attempt failed for {days} days (since {since}) without a 2xx answer")
REDELIVERIES: Final = Words("再送", "Redeliveries")
