"""A fifth goal set for ``benchmarks/planning.py --set blind``, written after round 3's last change.

``planning_unseen.py`` was scored once before round 3 and then used to find round 3's weaknesses, so its
after-number is optimistic. This set was written once the method was frozen, without routing any of its
goals beforehand, and scored once: round 3's least biased estimate of a hidden set. One goal or more
per agent, the built-in plans, two- and three-step goals and refusals, in mixed styles. Same labels as
``planning_goals.py``.
"""

from __future__ import annotations

__all__ = ("GOALS",)

_REVIEW = (
    "I stayed three nights. The room was spotless and the staff were kind, but the wifi kept dropping "
    "and breakfast ended at 9, which is far too early."
)
_MEMO = (
    "From Monday the office opens at 8:30. Parking permits must be renewed by 30 June. The cafeteria "
    "will close for renovation in July, and a food truck will come every day instead."
)

GOALS: tuple[tuple[str, str], ...] = (
    # ---- inference
    ("Write a cheerful four-line poem for my colleague who is retiring.", "generator"),
    ("Can you come up with three names for a vegan bakery?", "generator"),
    ("hey whats up, just want to talk", "chat"),
    ("Give me the gist of this memo in one sentence: " + _MEMO, "summarizer"),
    ("Please shorten the following to a couple of lines.\n\n" + _MEMO, "summarizer"),
    ("Is this message about billing, delivery or account access? 'I never got my parcel'", "classifier"),
    ("From this text get the fields date and time as JSON: the meeting is on 4 May at 10am", "extractor"),
    ("Translate this into Dutch please: Where can I buy a train ticket?", "translator"),
    ("how do u say 'happy new year' in Greek", "translator"),
    ("Write a Go function that reverses a string.", "coder"),
    ("I need a SQL query that counts orders per customer.", "coder"),
    ("What's the token count of this prompt: You are a careful assistant.", "tokenizer"),
    # ---- compression
    ("Compress this text with ΣLANG: status ok status ok status ok status ok", "compressor"),
    ("Turn this ΣLANG frame back into text: U0lHTUEBAAAAcXdl", "decompressor"),
    (
        "How much repeated content is in these messages?\n\nping host a\n\nping host a\n\nping host b",
        "deduplicator",
    ),
    ("List the glyphs that frame U0lHTUEBAAAAcXdl is made of", "glyph-encoder"),
    ("Trim this context so it fits in 100 tokens: " + _MEMO, "context-optimizer"),
    (
        "Train a new compression dictionary from these samples\n\nuser=1 ok\n\nuser=2 ok\n\nuser=3 fail",
        "dictionary-trainer",
    ),
    ("Run garbage collection on the semantic unit store", "rsu-manager"),
    ("Check whether frame U0lHTUEBAAAAcXdl is valid and what version it is", "codec-inspector"),
    # ---- storage
    ("Store this in my notes: the plumber comes on Thursday at 3", "archivist"),
    ("Search my stored notes for anything about the car insurance", "retriever"),
    ("Open the stored record with id note-314", "fetcher"),
    ("Remove record tmp-77 from the vault for good", "eraser"),
    ("Please rotate the key encryption key", "key-warden"),
    ("Could you rebuild the search index?", "indexer"),
    ("Snapshot the vault and call it before-cleanup", "snapshotter"),
    ("What's the hit rate of the vault cache right now?", "vault-stats"),
    # ---- analysis
    ("How does the guest feel about the hotel? " + _REVIEW, "sentiment"),
    ("What are the main topics of this memo? " + _MEMO, "keyword-extractor"),
    (
        "Find every person and company named in: Satya Nadella said Microsoft will invest in Kenya.",
        "entity-extractor",
    ),
    ("What language is this: 'Hyvää huomenta'", "language-detector"),
    ("Are 'the meeting is cancelled' and 'the meeting will not happen' saying the same thing?", "similarity"),
    (
        "What's the cyclomatic complexity of this code?\n\ndef g(a):\n    return a if a else 0",
        "code-analyzer",
    ),
    ("Give me the mean, min and max of 7, 3, 9, 12, 5", "statistician"),
    ("Critique the writing of this paragraph and suggest improvements: " + _REVIEW, "quality-critic"),
    # ---- synthesis
    ("From what I saved, when do the parking permits have to be renewed?", "plan:rag"),
    ("Just plan the agent steps for translating a memo and summarizing it, don't run anything", "planner"),
    (
        "Combine these two partial answers into one\n\nThe bridge opened in 1932.\n\nIt is 503 m long.",
        "aggregator",
    ),
    (
        "Turn these results into a markdown report titled Load Test: p50 12 ms, p99 40 ms, errors 0",
        "reporter",
    ),
    ("Which answer wins the majority: '42', '42', '41'", "consensus"),
    ("Convert this to CSV: name: Ana, age: 31", "formatter"),
    (
        "Is the answer 'Paris has 3 million people' supported by this source? "
        "'Paris has about 2.1 million inhabitants.'",
        "verifier",
    ),
    ('Run this workflow: {"steps": [{"id": "a", "agent": "sentiment"}]}', "workflow-runner"),
    # ---- built-in plans
    ("Analyse this review from every angle and give me a report: " + _REVIEW, "plan:report"),
    (
        "Ask the model a few times and go with the majority: what is the boiling point of water in "
        "Fahrenheit?",
        "plan:consensus",
    ),
    # ---- multi-step
    ("Summarize the memo and then translate the summary into German.\n\n" + _MEMO, "summarizer > translator"),
    (
        "Save the note 'the spare tyre is in the garage' and then ask where the spare tyre is.",
        "archivist > rag-answerer",
    ),
    ("1. Pull out the entities\n2. Turn them into YAML\n\n" + _MEMO, "entity-extractor > formatter"),
    (
        "Detect the language of 'Buenas noches', then translate it into English, then count its tokens.",
        "language-detector > translator > tokenizer",
    ),  # fmt: skip
    ("Take a snapshot named pre-rotation; after that rotate the encryption key.", "snapshotter > key-warden"),
    ("First write a short poem about snow. Then check its sentiment.", "generator > sentiment"),
    # ---- refusals
    ("Pay my electricity bill", "clarify"),
    ("What's the exchange rate of the dollar today?", "clarify"),
    ("Do whatever you think is best", "clarify"),
    ("Turn on the kitchen lights", "clarify"),
    ("Translate the memo: " + _MEMO, "clarify"),  # into which language?
    ("Delete that record", "clarify"),  # which id?
    ("Label this comment: great stuff", "clarify"),  # which labels?
    ("Book a hotel in Madrid for next weekend", "clarify"),
)
