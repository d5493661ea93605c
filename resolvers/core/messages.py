"""Words a user reads that every domain shares: ``Words`` (a text in Japanese and English),
the field labels and hints of resolvers/core/validation.py, and what the GraphQL edge says
about a value it cannot read. A label fills the ``{label}`` of an ErrorCode's message.

A domain's own words (mails, notices, reasons, its field labels) live in its
``messages.py``; the error messages live beside their codes (resolvers/core/errors.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Words:
    """A text a user reads, in Japanese and in English. ``format`` fills the ``{placeholders}``
    of both; a ``Words`` value given as a parameter fills each language with its own text."""

    ja: str
    en: str

    def in_(self, language: str) -> str:
        """The text in ``language`` ("en", else Japanese)."""
        return self.en if language == "en" else self.ja

    def format(self, **params: object) -> Words:
        return Words(self.ja.format(**in_language(params, "ja")), self.en.format(**in_language(params, "en")))

    def __str__(self) -> str:
        return self.ja


def in_language(params: Mapping[str, object], language: str) -> dict[str, object]:
    """``params`` with every ``Words`` value in ``language``."""
    return {k: v.in_(language) if isinstance(v, Words) else v for k, v in params.items()}


Label = Words | str  # a field label; a plain str (a GraphQL field name such as "idempotencyKey") reads the same in both

PERSON_NAME: Final = Words("氏名", "Name")
EMAIL: Final = Words("E-mail", "E-mail")
PHONE: Final = Words("電話番号", "Phone number")

# a label and what the value must look like: INVALID's message shows both
NAME_FORMAT_HINT: Final = Words("{label}(姓と名を1つの空白で区切る)", "{label} (family and given name, one space between)")
HALF_WIDTH_DIGITS_HINT: Final = Words("{label}(半角数字)", "{label} (half-width digits)")
MAX_LENGTH_HINT: Final = Words("{label}({limit}文字以内)", "{label} (at most {limit} characters)")
RANGE_HINT: Final = Words("{label}({low}〜{high})", "{label} ({low} to {high})")
CONTROL_CHARACTER_HINT: Final = Words("{label}(制御文字を含まない文字列)", "{label} (text without control characters)")

# --------------------------------------------------------------------------- the GraphQL edge: values it cannot read

# "{argument}: {problem} (value: …)"; {argument} is the argument or input field as the request wrote it
BAD_VALUE: Final = Words("{argument}の値が正しくありません: {problem}(値: {value})",
                         "{argument}: {problem} (value: {value})")
BAD_VALUE_WITHOUT_ECHO: Final = Words("{argument}の値が正しくありません: {problem}", "{argument}: {problem}")
DATE_FORMAT: Final = Words("日付はYYYY-MM-DD形式(例: 2026-04-01)で指定してください", "write a date as YYYY-MM-DD (e.g. 2026-04-01)")
DATE_DOES_NOT_EXIST: Final = Words("この日付は存在しません。カレンダー上の日付を指定してください",
                                   "this date does not exist; give a real calendar date")
DATETIME_FORMAT: Final = Words("日時はISO 8601形式(例: 2026-04-01T10:00:00+09:00)で指定してください",
                               "write a date and time in ISO 8601 (e.g. 2026-04-01T10:00:00+09:00)")
DATETIME_OUT_OF_RANGE: Final = Words("日時は1900年から2999年までの範囲で指定してください",
                                     "give a date and time between the years 1900 and 2999")
NOT_AN_INTEGER: Final = Words("整数で指定してください", "give a whole number")
INTEGER_TOO_LARGE: Final = Words("-2147483648〜2147483647の整数で指定してください",
                                 "give a whole number from -2147483648 to 2147483647")
NOT_TEXT: Final = Words("文字列で指定してください", "give a string")
NOT_A_BOOLEAN: Final = Words("true または false で指定してください", "give true or false")
NOT_AN_ID: Final = Words("IDは文字列で指定してください", "give the ID as a string")
NOT_A_CHOICE: Final = Words("{type}の値の一つを指定してください", "give one of the values of {type}")
NOT_AN_OBJECT: Final = Words("{type}の項目をまとめたオブジェクトで指定してください", "give an object with the fields of {type}")
MISSING_FIELD: Final = Words("必須項目{name}がありません", "the required field {name} is missing")
UNKNOWN_FIELD: Final = Words("{type}に{name}という項目はありません", "{type} has no field {name}")
NULL_NOT_ALLOWED: Final = Words("必須です。nullは指定できません", "required; null is not allowed")
SUGGESTION: Final = Words("{message}(候補: {names})", "{message} Did you mean {names}?")  # development only
NOT_OF_TYPE: Final = Words("{type}として読めません", "this is not a valid {type}")
PAGE_SIZE: Final = Words("1〜{limit}の範囲で指定してください", "give a number from 1 to {limit}")
NOT_A_CURSOR: Final = Words("この一覧のカーソルではありません。前のページのendCursorを指定してください",
                            "not a cursor of this list; pass the endCursor of the previous page")
FIRST: Final = "first"  # argument names: the same in both languages
AFTER: Final = "after"

# --------------------------------------------------------------------------- the HTTP edge: requests it refuses itself

CROSS_SITE_REFUSED: Final = Words("他のサイトからの要求は受け付けません。このサーバーの画面、または許可されたオリジンから送ってください。",
                                  "Cross-site request refused; send it from this server's pages or an allowed origin.")
POST_A_JSON_BODY: Final = Words("GraphQLの要求はJSONの本文(Content-Type: application/json)でPOSTしてください。",
                                "POST a JSON body (Content-Type: application/json).")
NO_QUERIES_OVER_GET: Final = Words("GETではクエリを実行できません。JSONの本文でPOSTしてください。",
                                   "Queries are not allowed over GET; POST a JSON body instead.")
POST_ONLY: Final = Words("/graphql はPOST(JSONの本文)だけを受け付けます。",
                         "/graphql takes POST (a JSON body) only.")
POST_ONLY_OR_EXPLORER: Final = Words("/graphql はPOST(JSONの本文)だけを受け付けます(GETはブラウザ用のGraphiQL画面です)。",
                                     "/graphql takes POST (a JSON body) only (GET is the GraphiQL page, for a browser).")

# --------------------------------------------------------------------------- limits of one request (docs/api.md, Limits)

QUERY_TOO_COSTLY: Final = Words(
    "このクエリの結果は大きすぎます(見積もり値の上限は{limit})。firstを小さくするか、項目や別名を減らすか、複数の要求に分けてください。",
    "This query asks for too much (its estimated answer exceeds {limit} values); ask smaller pages (first), "
    "fewer fields or aliases, or split it into several requests.")
RESPONSE_TOO_LARGE: Final = Words(
    "結果が大きすぎるため返せません(上限{limit}バイト)。firstを小さくするか、項目を減らしてください。",
    "The answer is too large to send (over {limit} bytes); ask smaller pages (first) or fewer fields.")
QUERY_TIMEOUT: Final = Words(
    "クエリが制限時間({seconds}秒)内に終わりませんでした。firstを小さくするか、項目を減らして再度お試しください。",
    "The query did not finish within its time budget ({seconds} s); ask smaller pages (first) or fewer fields, "
    "then try again.")

# --------------------------------------------------------------------------- documents graphql-core refuses
# graphql-core and strawberry word a document they refuse in English, for a developer; these
# are the same refusals in our words (schema/request_errors.py maps their messages here).
# Names of the schema ({field}, {type}, …) read the same in both languages.

SYNTAX_ERROR: Final = Words("GraphQLの構文が正しくありません({line}行{column}列): {detail}。",
                            "Syntax error (line {line}, column {column}): {detail}.")
SYNTAX_EXPECTED: Final = Words("{expected}が必要な位置に{found}があります", "expected {expected}, found {found}")
SYNTAX_UNEXPECTED: Final = Words("予期しない{found}があります", "unexpected {found}")
SYNTAX_OTHER: Final = Words("書き方を確認してください", "check how it is written")
TOO_MANY_TOKENS: Final = Words("クエリが長すぎます(トークン数の上限は{limit})。クエリを短くするか、分けて送ってください。",
                               "The query is too long (more than {limit} tokens); shorten it or split it.")
TOO_DEEP: Final = Words("クエリの入れ子が深すぎます(上限{limit}段)。入れ子を浅くしてください。",
                        "The query nests too deeply (at most {limit} levels); make it shallower.")
TOO_MANY_ALIASES: Final = Words("別名(alias)が多すぎます({count}個、上限{limit}個)。要求を分けてください。",
                                "Too many aliases ({count}; at most {limit}); split the request.")
UNKNOWN_QUERY_FIELD: Final = Words("{type}に{field}というフィールドはありません", "{type} has no field {field}")
UNKNOWN_ARGUMENT: Final = Words("{owner}に{argument}という引数はありません", "{owner} has no argument {argument}")
MISSING_ARGUMENT: Final = Words("{field}の必須の引数{argument}({type})がありません",
                                "{field} needs its argument {argument} ({type})")
NEEDS_SELECTION: Final = Words("{field}({type})には取得する項目を {{ }} で指定してください",
                               "{field} ({type}) needs a selection of its fields in {{ }}")
NO_SELECTION: Final = Words("{field}({type})には項目を指定できません。{{ }} を外してください",
                            "{field} ({type}) has no fields to select; remove the {{ }}")
UNKNOWN_TYPE: Final = Words("{type}という型はありません", "there is no type {type}")
UNUSED_VARIABLE: Final = Words("変数${name}が使われていません", "the variable ${name} is never used")
UNDEFINED_VARIABLE: Final = Words("変数${name}が宣言されていません", "the variable ${name} is not declared")
VARIABLE_TYPE_MISMATCH: Final = Words("変数${name}の型{type}は、使われている位置の型{expected}に合いません",
                                      "the variable ${name} of type {type} does not fit where {expected} is expected")
UNKNOWN_FRAGMENT: Final = Words("フラグメント{name}がありません", "there is no fragment {name}")
UNUSED_FRAGMENT: Final = Words("フラグメント{name}が使われていません", "the fragment {name} is never used")
UNKNOWN_OPERATION: Final = Words("{name}という操作はこのクエリにありません", "the query has no operation named {name}")
OPERATION_NAME_NEEDED: Final = Words("複数の操作があるときはoperationNameを指定してください",
                                     "give an operationName when the query has several operations")
DUPLICATE_OPERATION: Final = Words("操作の名前{name}が重複しています", "there are two operations named {name}")
INTROSPECTION_DISABLED: Final = Words("この環境ではスキーマの照会(introspection)はできません(フィールド{field})",
                                      "introspection is turned off here (field {field})")
INVALID_DOCUMENT: Final = Words("クエリがスキーマに合いません。schema/schema.graphql と照らして直してください(詳細はextensions.detail)。",
                                "The query does not fit the schema; check it against schema/schema.graphql (extensions.detail).")
IN_THE_QUERY: Final = Words("クエリが正しくありません: {problem}。", "The query is not valid: {problem}.")
BODY_NOT_UTF8: Final = Words("本文がUTF-8ではありません。UTF-8のJSONで送ってください。", "The body is not UTF-8.")
BODY_NOT_JSON: Final = Words("本文がJSONとして読めません。", "The body is not valid JSON.")
BODY_TOO_DEEP: Final = Words("本文のJSONの入れ子が深すぎます。", "The JSON body is nested too deeply.")
BODY_NOT_AN_OBJECT: Final = Words("本文はqueryを含むJSONオブジェクトにしてください。", "The body must be a JSON object with a query.")
BODY_TOO_LARGE: Final = Words("本文が大きすぎます(上限{limit}バイト)。", "The body is larger than {limit} bytes.")
NO_QUERY: Final = Words("GraphQLのクエリ(query)がありません。", "No GraphQL query found in the request.")
PARAMETER_NOT_OF_TYPE: Final = Words("{name}は{kind}で指定してください(省略またはnullも可)。",
                                     "The GraphQL operation's `{name}` must be {kind} or null, if provided.")
A_STRING: Final = Words("文字列", "a string")  # kinds for PARAMETER_NOT_OF_TYPE
AN_OBJECT: Final = Words("オブジェクト", "an object")
BATCH_REFUSED: Final = Words("複数の操作をまとめた要求(バッチ)は受け付けません。1要求に1操作で送ってください。",
                             "Batching is not enabled: send one operation a request.")
UNSAFE_TEXT: Final = Words("入力にNUL文字または不正な文字(対になっていないサロゲート)が含まれています。",
                           "Text must not contain NUL (U+0000) or unpaired surrogates.")
NOT_SERVED: Final = Words("このアドレスでは提供していません。", "Not found.")
REQUEST_REFUSED: Final = Words("この要求は処理できません(HTTP {status})。", "The request was refused (HTTP {status}).")
