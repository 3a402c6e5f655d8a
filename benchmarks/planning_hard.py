"""A sixth goal set for ``benchmarks/planning.py --set hard``: the harder styles, written blind.

``planning_blind.py`` turned out no harder than what round 2 already handled (the round-2 planner scores
58/60 on it too), so this set was written after it, again without routing any goal beforehand, in the
styles that separate planners: context before the request, the text after a question, polite and
non-native openings, typos, JSON and code payloads, inline and numbered steps, questions whose labels
come last, and refusals. Scored once, for both the round-2 and the round-3 planner. Same labels as
``planning_goals.py``.
"""

from __future__ import annotations

__all__ = ("GOALS",)

_EMAIL = (
    "Hi Tom, thanks for the quick fix yesterday. The dashboard loads fine now, but the export button "
    "still does nothing. Could you look at it before Friday? Best, Lena"
)
_STORY = (
    "The old ferry left the harbour at dawn. Gulls followed it for a mile. By noon the island was a grey "
    "line on the horizon, and the passengers had stopped talking."
)

GOALS: tuple[tuple[str, str], ...] = (
    # ---- context before the request
    (
        "I run a small bike shop and customers email me all day. I can't read them all. Can you tell me "
        "if this one is happy or annoyed? " + _EMAIL,
        "sentiment",
    ),
    (
        "My teacher gave us this text for homework and I have to hand in a summary tomorrow. Please "
        "summarize it for me: " + _STORY,
        "summarizer",
    ),
    (
        "We are moving offices next month and I keep losing track of things, so would you save this in "
        "the vault for me: 'the new office key is in drawer 3'",
        "archivist",
    ),
    (
        "Good evening! Our data team asked me to check something. What's the median of 14, 3, 8, 21 and 5?",
        "statistician",
    ),
    ("Hello there. Translate 'see you tomorrow' into Czech, please.", "translator"),
    # ---- the text after a question
    ("Who is mentioned in this email, and which dates? " + _EMAIL, "entity-extractor"),
    ("What language is the following written in? Dobrý den, jak se máte?", "language-detector"),
    ("Which keywords sum up this story? " + _STORY, "keyword-extractor"),
    ("How readable is this paragraph? " + _STORY, "quality-critic"),
    # ---- non-native and typos
    ("Please, you can make the translation of 'good appetite' to French language?", "translator"),
    ("I want know how many token has this sentence: 'the ferry left at dawn'", "tokenizer"),
    ("plz summerize this email: " + _EMAIL, "summarizer"),
    ("wrtie me a short story about a lost dog", "generator"),
    ("cant remember what i saved about the ferry times, can u search my notes", "retriever"),
    # ---- JSON and code payloads
    ('Turn this JSON into YAML please: {"city": "Oslo", "zones": [1, 2, 3]}', "formatter"),
    (
        'Pack this json as small as possible without losing anything: {"a": "xxxx", "b": "xxxx"}',
        "compressor",
    ),  # fmt: skip
    (
        "What is the complexity of this function?\n\n"
        "def h(n):\n    while n > 1:\n        n //= 2\n    return n",
        "code-analyzer",
    ),  # fmt: skip
    ("Write a JavaScript function that returns the largest number in an array.", "coder"),
    # ---- questions whose labels come last
    ("Is this review positive, negative or neutral? 'It was fine, nothing special.'", "sentiment"),
    (
        "Would you file this ticket under hardware, software or network? 'my mouse stopped working'",
        "classifier",
    ),  # fmt: skip
    # ---- storage and collective
    ("What do my saved notes say about the new office key?", "plan:rag"),
    ("Fetch me the record with the id key-note-1.", "fetcher"),
    ("Get rid of record key-note-1 for good.", "eraser"),
    ("Could you list the snapshots of the vault?", "snapshotter"),
    (
        "Are these two answers saying the same? 'The ferry leaves at 6' and 'Departure is at six'",
        "similarity",
    ),  # fmt: skip
    ("Check if the answer 'the ferry left at noon' is supported by this text: " + _STORY, "verifier"),
    ("Put these together into one answer\n\nThe ferry is old.\n\nIt leaves at dawn.", "aggregator"),
    ("Make a full analysis report of this email: " + _EMAIL, "plan:report"),
    # ---- inline and numbered steps
    (
        "Step 1: summarize the story. Step 2: translate the summary into Italian.\n\n" + _STORY,
        "summarizer > translator",
    ),
    ("(1) find the entities (2) count the tokens\n\n" + _EMAIL, "entity-extractor > tokenizer"),
    (
        "- detect the language\n- translate to English\n\nGuten Morgen, wie geht's?",
        "language-detector > translator",
    ),
    (
        "Please remember that the ferry leaves at 6:15. After that, tell me when the ferry leaves.",
        "archivist > rag-answerer",
    ),
    ("Compress 'aaaa bbbb aaaa bbbb' and then check the frame is valid.", "compressor > codec-inspector"),
    ("Write a haiku about the sea, then translate it into Spanish.", "generator > translator"),
    # ---- refusals
    ("Can you fix my wifi router?", "clarify"),
    ("Send this email to Tom: " + _EMAIL, "clarify"),
    ("What will the weather be on Friday?", "clarify"),
    ("Hmm, not sure. Something with the data maybe?", "clarify"),
    ("Translate the story.\n\n" + _STORY, "clarify"),  # into which language?
    ("Classify this email: " + _EMAIL, "clarify"),  # which labels?
)
