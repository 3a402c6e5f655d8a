"""A seventh goal set for ``benchmarks/planning.py --set round4``: an engineer's working day, written blind.

Written in round 4 before any change to the planner, in the voice of an engineer using the agent service
from a terminal or a ticket: realistic payloads (service logs, Python and SQL, JSON configs, e-mails,
design docs), every one of the 40 agents and the built-in plans, two- and three-step goals, and goals
that should be refused. Scored once before round 4 changed anything (the honest estimate), then used to
find round 4's weaknesses. Same labels as ``planning_goals.py``.
"""

from __future__ import annotations

__all__ = ("GOALS",)

_LOG = (
    "2026-03-02T10:14:07Z ERROR payments-api timeout calling ledger after 30000 ms (request 8f2c)\n"
    "2026-03-02T10:14:09Z WARN payments-api retry 1/3 for request 8f2c\n"
    "2026-03-02T10:14:41Z ERROR payments-api timeout calling ledger after 30000 ms (request 8f2c)"
)
_CODE = (
    "def load(path):\n"
    "    data = []\n"
    "    for line in open(path):\n"
    "        if line.strip():\n"
    "            if not line.startswith('#'):\n"
    "                data.append(line.split(','))\n"
    "    return data"
)
_CONFIG = '{"service": "ingest", "replicas": 3, "limits": {"cpu": "500m", "memory": "1Gi"}}'
_MAIL = (
    "Hi team, the staging cluster will be down on Thursday 12 March from 22:00 to 23:30 UTC for the "
    "Postgres upgrade. Questions to ops@example.com or +44 20 7946 0958. Thanks, Priya"
)
_DOC = (
    "The ingest service reads events from Kafka, validates them against the schema registry and writes "
    "them to the warehouse in batches of 500. Failed events are sent to a dead-letter topic. Batches are "
    "committed only after the warehouse acknowledges the write, so a crash replays at most one batch."
)
_INCIDENT = (
    "At 10:14 the payments API started timing out against the ledger. The on-call engineer rolled back "
    "release 4.2.1 at 10:40 and errors stopped by 10:45. Root cause was a missing index on ledger.entries."
)

GOALS: tuple[tuple[str, str], ...] = (
    # ---- inference
    ("Write a short release note announcing that exports to CSV are now 3x faster.", "generator"),
    ("let's talk through my on-call rotation problems for a bit", "chat"),
    ("Summarize this incident write-up for the status page:\n\n" + _INCIDENT, "summarizer"),
    (
        "Triage this log line as p1, p2 or p3:\n" + _LOG.splitlines()[0],
        "classifier",
    ),
    (
        "Extract service and replicas as JSON following this schema "
        '{"type": "object", "properties": {"service": {"type": "string"}, "replicas": {"type": "integer"}}} '
        "from: the ingest service runs 3 replicas",
        "extractor",
    ),
    ("Translate this maintenance notice into German: " + _MAIL, "translator"),
    ("Write a Go function that retries an HTTP request with exponential backoff.", "coder"),
    (
        "How many tokens does our system prompt take? 'You are a terse SRE assistant. Answer in bullets.'",
        "tokenizer",
    ),
    # ---- compression
    ("Compress these log lines losslessly before I ship them:\n" + _LOG, "compressor"),
    ("Decompress this ΣLANG frame so I can read it: U0lHTUEBAAAAcXdlcnR5", "decompressor"),
    ("How much of this batch is duplicated against what we already store?\n\n" + _LOG, "deduplicator"),
    ("Show me which glyphs the frame U0lHTUEBAAAAcXdlcnR5 references.", "glyph-encoder"),
    (
        "This design doc is too long for the prompt; cut it down to 40 tokens without an LLM: " + _DOC,
        "context-optimizer",
    ),
    (
        "Build a zstd dictionary from these sample events:\n\n"
        '{"event": "login", "user": 1}\n\n{"event": "login", "user": 2}\n\n{"event": "logout", "user": 1}',
        "dictionary-trainer",
    ),
    ("Pin RSU 7f3a so garbage collection doesn't drop it.", "rsu-manager"),
    ("Is this frame intact? Check its header and MAC: U0lHTUEBAAAAcXdlcnR5", "codec-inspector"),
    # ---- storage
    ("Store this runbook entry in the vault: 'restart ingest with make ingest-restart'", "archivist"),
    ("Look up anything we stored about the ledger index migration.", "retriever"),
    ("Pull record runbook-42 out of the vault.", "fetcher"),
    ("Delete record tmp-session-9 from storage.", "eraser"),
    ("Our KEK is a year old; rotate it.", "key-warden"),
    ("Rebuild the FAISS indexes after yesterday's bulk delete.", "indexer"),
    ("Take a snapshot of the vault called pre-upgrade.", "snapshotter"),
    ("What's the vault's cache hit ratio and WAL size right now?", "vault-stats"),
    # ---- analysis
    (
        "Is the customer in this ticket angry? 'Third outage this week. We are evaluating other vendors.'",
        "sentiment",
    ),
    ("Give me the key phrases of this design doc: " + _DOC, "keyword-extractor"),
    ("Pull every email address, phone number and date out of this message: " + _MAIL, "entity-extractor"),
    (
        "Which language is this bug report in? 'La aplicación se cierra al iniciar sesión.'",
        "language-detector",
    ),
    (
        "Do these two error messages mean the same thing? 'connection refused by ledger' and "
        "'ledger rejected the connection'",
        "similarity",
    ),
    ("Check the cyclomatic complexity of this function:\n\n" + _CODE, "code-analyzer"),
    ("p50/p99 of these latencies in ms: 12, 15, 11, 240, 13, 14, 12, 980", "statistician"),
    ("Review the readability of our onboarding paragraph: " + _DOC, "quality-critic"),
    # ---- synthesis
    # labelled "rag-answerer" when first scored; one question for it is the rag plan by the planner's
    # documented convention (no set labels a single rag-answerer step), so relabelled after that scoring
    ("Based on our stored runbooks, how do I restart the ingest service?", "plan:rag"),
    (
        "Only draft a plan for: summarize the incident, then translate it to French. Don't execute it.",
        "planner",
    ),
    (
        "Merge these partial results into one:\n\nreplicas: 3\n\nreplicas: 3\n\nregion: eu-west-1",
        "aggregator",
    ),
    ("Make a markdown report titled Weekly Errors from: payments 14, ingest 3, auth 0", "reporter"),
    ("Three runs answered '4.2.1', '4.2.1' and '4.2.0'. Which one should we trust?", "consensus"),
    ("Convert this config to YAML: " + _CONFIG, "formatter"),
    (
        "Does the incident write-up support the claim 'the rollback happened at 10:40'? " + _INCIDENT,
        "verifier",
    ),
    (
        'Execute this workflow: {"steps": [{"id": "s", "agent": "summarizer"}, '
        '{"id": "t", "agent": "translator", "after": ["s"]}]}',
        "workflow-runner",
    ),
    # ---- built-in plans
    ("Using the docs we saved, what is the batch size of the ingest service?", "plan:rag"),
    ("Produce a full analysis report of this incident: " + _INCIDENT, "plan:report"),
    (
        "Generate the answer several times and take the majority: what port does Postgres listen on by "
        "default?",
        "plan:consensus",
    ),
    # ---- two and three steps
    (
        "Summarize the incident and then translate the summary to Spanish.\n\n" + _INCIDENT,
        "summarizer > translator",
    ),
    (
        "Detect the language of 'Der Export schlägt fehl' and translate it to English.",
        "language-detector > translator",
    ),
    (
        "Analyse the complexity of this code, then write a report of the findings.\n\n" + _CODE,
        "code-analyzer > reporter",
    ),
    (
        "Extract the entities from this email and save them in the vault: " + _MAIL,
        "entity-extractor > archivist",
    ),
    (
        "Compress the log, then verify the frame, then list its glyphs.\n\n" + _LOG,
        "compressor > codec-inspector > glyph-encoder",
    ),
    (
        "1. summarize the doc 2. pull out its keywords 3. check its sentiment\n\n" + _DOC,
        "summarizer > keyword-extractor > sentiment",
    ),
    # ---- refusals
    ("Deploy release 4.2.2 to production.", "clarify"),
    ("Page the on-call engineer about the ledger timeouts.", "clarify"),
    ("Translate the maintenance notice.\n\n" + _MAIL, "clarify"),  # into which language?
    ("Fix it.", "clarify"),
    ("Open a Jira ticket for the missing index.", "clarify"),
)
