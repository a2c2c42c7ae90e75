"""Who writes the SQL: one interface, three providers.

* ``builtin`` — offline and deterministic (:mod:`helios_core.chat.builtin`), the default.
* ``bedrock`` — Amazon Bedrock through boto3's Converse API, with a configurable
  model id, using the AWS connection the user chose on the Connect page.
* ``openai`` — any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama,
  vLLM …): base URL, model, optional key; plain ``urllib``, no new dependency.

An LLM provider receives the subject's schema, sample values of its
low-cardinality columns, the previous turn's SQL and the question — never
result rows unless the user allowed it. Whatever it returns goes through the
gate like any other SQL; on an error it gets one repair round with the error
text. Keys live only in the provider object (in memory) and are never echoed.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Protocol

from helios_core.chat import builtin
from helios_core.chat.context import SubjectContext
from helios_core.errors import HeliosError, ValidationError

PROVIDERS = ("builtin", "bedrock", "openai")
DEFAULT_BEDROCK_MODEL = "anthropic.claude-3-5-haiku-20241022-v1:0"
MAX_SHARED_ROWS = 20


@dataclass
class GenerateRequest:
    question: str
    context: SubjectContext
    allow_rows: bool = False
    shared_rows: list[dict[str, Any]] | None = None   # previous result rows, only when the user allowed it
    repair: tuple[str, str] | None = None            # (the SQL that failed, the error text)


@dataclass
class Generation:
    sql: str | None
    message: str = ""              # when there is no SQL: why, in words
    suggestions: list[str] = field(default_factory=list)
    refused: bool = False          # a kind of question never answered (forecasts): the message leads the suggestions
    plan: dict[str, Any] | None = None
    description: str = ""
    chart: str = ""


class Provider(Protocol):
    name: str
    can_repair: bool

    def generate(self, request: GenerateRequest) -> Generation: ...

    def describe(self) -> str: ...


class BuiltinProvider:
    """The offline assistant: no network, same answer every time."""

    name = "builtin"
    can_repair = False  # deterministic: asking again gives the same SQL

    def generate(self, request: GenerateRequest) -> Generation:
        result = builtin.answer(request.question, request.context)
        if not result.ok:
            return Generation(None, message=result.message, suggestions=result.suggestions, refused=result.refused)
        return Generation(result.sql, plan=result.plan.to_json() if result.plan else None,
                          description=result.description, chart=result.chart)

    def describe(self) -> str:
        return "Built-in assistant (offline: nothing leaves this machine)"


# ---- LLM providers ----------------------------------------------------------------------

SYSTEM_PROMPT = """You translate questions about data into ClickHouse SQL.
Rules:
- Answer with exactly one read-only SELECT statement (WITH … SELECT is fine), in a ```sql code block, nothing else.
- Use only the tables and columns described below; qualify tables exactly as shown.
- No SETTINGS, FORMAT, INTO OUTFILE, table functions (url, file, s3, numbers …) or dictionary functions.
- Give computed columns short snake_case aliases. Order grouped results sensibly (time ascending, otherwise the
  main measure descending) and add LIMIT for "top N" questions.
- Relative times use now() / today(), e.g. event_time >= now() - INTERVAL 7 DAY.
- For a follow-up ("now by day", "only mobile") modify the previous SQL.
- If the question cannot be answered from these tables, answer with one line: CANNOT: <why>."""


def build_prompt(request: GenerateRequest) -> str:
    ctx = request.context
    parts = ["Schema:", ctx.describe(values=True), "", f"Question: {request.question.strip()}"]
    if request.allow_rows and request.shared_rows:
        rows = request.shared_rows[:MAX_SHARED_ROWS]
        parts += ["", f"The first {len(rows)} rows of the previous result (the user allowed sharing them):",
                  json.dumps(rows, default=str)]
    if request.repair:
        sql, error = request.repair
        parts += ["", "Your previous SQL was:", sql, "It was refused or failed with this error:", error,
                  "Reply with a corrected statement (or CANNOT: …)."]
    return "\n".join(parts)


def what_is_sent(provider_name: str, allow_rows: bool) -> str:
    """The sentence the Chat page shows next to the provider settings."""
    if provider_name == "builtin":
        return "The built-in assistant runs here: nothing is sent anywhere."
    rows = ("and, because you allowed it, up to 20 rows of the previous result" if allow_rows
            else "but never any result rows")
    return (f"Sent to the {provider_name} model with each question: the subject's schema (tables, columns, types), "
            f"up to 20 distinct values of each low-cardinality column, the previous question and its SQL, "
            f"and your question — {rows}. Keys stay in this browser session and are never stored.")


_SQL_BLOCK = re.compile(r"```(?:sql|clickhouse)?\s*\n?(.*?)```", re.S | re.I)


def parse_reply(text: str) -> Generation:
    """The SQL in a model's reply (a ```sql block, or the bare statement), or its CANNOT reason."""
    text = (text or "").strip()
    if not text:
        return Generation(None, message="The model returned an empty answer.")
    cannot = re.match(r"^\s*CANNOT\s*:?\s*(.*)", text, re.S | re.I)
    if cannot:
        return Generation(None, message=cannot.group(1).strip() or "The model says it cannot answer this.")
    block = _SQL_BLOCK.search(text)
    sql = block.group(1) if block else text
    sql = sql.strip().rstrip(";").strip()
    if not sql:
        return Generation(None, message="The model's answer contained no SQL.")
    return Generation(sql)


class LLMProvider:
    name = "llm"
    can_repair = True

    def complete(self, system: str, prompt: str) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    def generate(self, request: GenerateRequest) -> Generation:
        reply = self.complete(SYSTEM_PROMPT, build_prompt(request))
        generation = parse_reply(reply)
        if generation.sql is None and not generation.suggestions:
            generation.suggestions = builtin.suggestions(request.context)
        return generation


class BedrockProvider(LLMProvider):
    """Amazon Bedrock's Converse API through boto3 (model id configurable)."""

    name = "bedrock"

    def __init__(self, model_id: str = DEFAULT_BEDROCK_MODEL, client: Any = None, connection: Any = None,
                 region: str | None = None, max_tokens: int = 1024) -> None:
        if not model_id or not model_id.strip():
            raise ValidationError("Give a Bedrock model id.", f"For example {DEFAULT_BEDROCK_MODEL}.")
        self.model_id = model_id.strip()
        self.max_tokens = max_tokens
        self._connection = connection
        self._region = region
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            if self._connection is not None:
                # Bedrock is real AWS: the sandbox's endpoint (moto) does not speak it.
                self._client = self._connection.session().client(
                    "bedrock-runtime", region_name=self._connection.region)
            else:
                import boto3

                from helios_core.config import get_settings
                self._client = boto3.client("bedrock-runtime", region_name=self._region or get_settings().aws_region)
        return self._client

    def complete(self, system: str, prompt: str) -> str:
        from botocore.exceptions import BotoCoreError, ClientError
        try:
            response = self.client.converse(
                modelId=self.model_id,
                system=[{"text": system}],
                messages=[{"role": "user", "content": [{"text": prompt}]}],
                inferenceConfig={"maxTokens": self.max_tokens, "temperature": 0.0},
            )
        except (ClientError, BotoCoreError) as exc:
            from helios_core.aws import to_aws_error
            raise to_aws_error(exc, "bedrock:InvokeModel", self._connection) from None
        content = response.get("output", {}).get("message", {}).get("content", [])
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))

    def describe(self) -> str:
        return f"Amazon Bedrock, model {self.model_id}"


class OpenAICompatibleProvider(LLMProvider):
    """An OpenAI-compatible ``/chat/completions`` endpoint (OpenAI, Ollama, vLLM, LM Studio …)."""

    name = "openai"

    def __init__(self, base_url: str, model: str, api_key: str | None = None, timeout_s: float = 60.0) -> None:
        base_url = (base_url or "").strip().rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise ValidationError("The base URL must start with http:// or https://.",
                                  "For example https://api.openai.com/v1 or http://localhost:11434/v1.")
        if not model or not model.strip():
            raise ValidationError("Give the model name.", "For example gpt-4o-mini, or llama3.1 for Ollama.")
        self.base_url = base_url
        self.model = model.strip()
        self._api_key = api_key or None
        self.timeout_s = timeout_s

    def __repr__(self) -> str:  # never the key
        return f"OpenAICompatibleProvider({self.describe()})"

    @property
    def endpoint(self) -> str:
        return self.base_url if self.base_url.endswith("/chat/completions") else self.base_url + "/chat/completions"

    def complete(self, system: str, prompt: str) -> str:
        body = json.dumps({"model": self.model, "temperature": 0,
                           "messages": [{"role": "system", "content": system},
                                        {"role": "user", "content": prompt}]}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        request = urllib.request.Request(self.endpoint, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            hint = {401: "Check the API key.", 403: "The key is not allowed to use this model.",
                    404: "Check the base URL (it usually ends in /v1) and the model name.",
                    429: "The endpoint is rate-limiting; wait and try again."}.get(exc.code, "")
            raise HeliosError(f"The model endpoint answered HTTP {exc.code}: {detail}", hint) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise HeliosError(f"Could not reach the model endpoint {self.base_url}: {reason}",
                              "Check the base URL and that the server is running.") from None
        except ValueError as exc:
            raise HeliosError(f"The model endpoint did not answer with JSON ({exc}).",
                              "Check that the base URL points at an OpenAI-compatible API.") from None
        try:
            message = payload["choices"][0]["message"]
            content = message.get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError):
            raise HeliosError("The model endpoint's answer has no choices[0].message.content.",
                              "Check that it speaks the OpenAI chat-completions API.") from None
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        return str(content)

    def describe(self) -> str:
        return f"OpenAI-compatible endpoint {self.base_url}, model {self.model}" + \
            (" (with key)" if self._api_key else "")


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        data = json.loads(exc.read().decode("utf-8", "replace"))
        message = data.get("error", {}).get("message") if isinstance(data.get("error"), dict) else data.get("error")
        return str(message or data)[:300]
    except Exception:
        return exc.reason if isinstance(exc.reason, str) else "no details"


def make_provider(name: str, *, model_id: str = "", connection: Any = None, base_url: str = "", model: str = "",
                  api_key: str | None = None) -> Provider:
    """A provider by name (the CLI's --provider and the page's settings)."""
    name = (name or "builtin").lower()
    if name == "builtin":
        return BuiltinProvider()
    if name == "bedrock":
        return BedrockProvider(model_id or DEFAULT_BEDROCK_MODEL, connection=connection)
    if name in ("openai", "openai-compatible"):
        return OpenAICompatibleProvider(base_url, model, api_key)
    raise ValidationError(f"Unknown provider {name!r}.", f"Choose one of: {', '.join(PROVIDERS)}.")
