"""A fourth goal set for ``benchmarks/planning.py --set unseen``: styles the other three barely cover.

Written in round 3 *before* any change to the planner and scored once on the unchanged planner (the
honest estimate of how a hidden set written by someone else fares); never used to choose examples,
weights or thresholds afterwards. Styles: imperative, question form, polite, terse, typos, long
preambles, payload after a colon / in quotes / in a following paragraph, non-native English, multi-step
goals with "then" / "after that" / numbered lists, and goals that must be refused. Same labels as
``planning_goals.py``.
"""

from __future__ import annotations

__all__ = ("GOALS",)

_MAIL = (
    "Hello support, I ordered a blender on March 3 and it arrived broken. I have written twice and "
    "nobody answered. Please send a replacement to 14 Elm Street, Leeds. Thanks, Priya Nair"
)
_ARTICLE = (
    "The city council approved a new cycling plan on Tuesday. It adds 40 km of protected lanes by 2027 "
    "and removes parking on three central streets. Shop owners fear lost customers, while cycling groups "
    "say the plan does not go far enough."
)
_FN = "def add(a, b):\n    return a + b"

GOALS: tuple[tuple[str, str], ...] = (
    # ---- imperative, terse
    ("Summarise.\n\n" + _ARTICLE, "summarizer"),
    ("keywords pls: " + _ARTICLE, "keyword-extractor"),
    ("sentiment? 'worst purchase ever, never again'", "sentiment"),
    ("lang of 'Merci beaucoup mon ami'", "language-detector"),
    ("tokens in 'hello world'", "tokenizer"),
    ("snapshot vault now, name it before-upgrade", "snapshotter"),
    ("vault stats", "vault-stats"),
    ("rotate keys", "key-warden"),
    # ---- question form
    ("Can you tell me what language 'Grazie mille' is?", "language-detector"),
    ("What are the people, places and dates mentioned here? " + _MAIL, "entity-extractor"),
    ("What's the standard deviation of 2, 4, 4, 4, 5, 5, 7, 9?", "statistician"),
    ("Is 'The cat sat on the mat' close in meaning to 'A cat was sitting on a rug'?", "similarity"),
    ("How would you rate the writing quality of this paragraph? " + _ARTICLE, "quality-critic"),
    ("Could you write me a short story about a lighthouse keeper?", "generator"),
    ("Do you know how to say 'good night' in Portuguese?", "translator"),
    # ---- polite, long preambles
    (
        "Hi! I'm preparing for a meeting tomorrow and I'm really short on time, so I would be very "
        "grateful if you could give me a brief summary of the following article: " + _ARTICLE,
        "summarizer",
    ),
    (
        "Good morning. Our support team receives many emails and we want to know how customers feel. "
        "Would you kindly tell me whether this message is positive or negative? " + _MAIL,
        "sentiment",
    ),
    (
        "I'm building a small web app and I keep forgetting the syntax, so please write a Python function "
        "that reverses a linked list.",
        "coder",
    ),
    (
        "We had a security review last week and the auditor recommended it, so would you please rotate "
        "the tenant encryption key?",
        "key-warden",
    ),
    (
        "Hello, I am new here. I have a note I would like to keep safe for later. Please store it: "
        "'the storage room code is 7719'",
        "archivist",
    ),
    # ---- typos
    ("pls sumarize this artcle: " + _ARTICLE, "summarizer"),
    ("tranlsate 'where is the library' to german", "translator"),
    ("wirte a haiku abuot the sea", "generator"),
    ("waht is the sentimnt of 'I am so happy with this'", "sentiment"),
    ("extarct the entities from: Angela Merkel visited Paris in 2019", "entity-extractor"),
    # ---- payload after a colon, in quotes, in a paragraph
    ("Translate into Spanish: The meeting is postponed until next week.", "translator"),
    ('Count the tokens of "Once upon a time there was a king"', "tokenizer"),
    ("Which keywords best describe the text below?\n\n" + _ARTICLE, "keyword-extractor"),
    ("Tell me the mood of this review.\n\nThe food was cold and the waiter was rude.", "sentiment"),
    ("Compress the following so it takes less space: log log log log log log log log", "compressor"),
    ("Analyse this code for complexity:\n\n" + _FN, "code-analyzer"),
    ("Turn this into JSON: name = Ana, age = 31, city = Porto", "formatter"),
    # ---- non-native English
    ("Please to make summary of this text for me: " + _ARTICLE, "summarizer"),
    ("I want that you translate 'I am hungry' in French language", "translator"),
    ("You can find for me the notes I saved about the holiday?", "retriever"),
    ("Make for me one poem about the mountains, short please", "generator"),
    ("Which is the feeling of this sentence: 'the hotel was very dirty'", "sentiment"),
    ("Please you delete the record with id note-12 from vault", "eraser"),
    # ---- storage and vault operations, varied wording
    ("Put this in long-term memory: the wifi router is in the hallway closet", "archivist"),
    ("Look through my stored documents for anything about parking permits", "retriever"),
    ("Get me the entry whose id is cust-881", "fetcher"),
    ("Wipe the record rec-3 from storage, please", "eraser"),
    ("Rebuild the vector index, it's getting slow", "indexer"),
    ("Roll the vault back to the snapshot called tuesday-night", "snapshotter"),
    ("How big is the vault cache and what's its hit ratio?", "vault-stats"),
    # ---- built-in plans
    ("Based on what I've stored, what's the name of my landlord?", "plan:rag"),
    ("Using my saved notes, answer: when does my passport expire?", "plan:rag"),
    (
        "Give me a complete report on this message — tone, key topics, names and language: " + _MAIL,
        "plan:report",
    ),  # fmt: skip
    (
        "Ask the model several times and tell me which answer comes up most: what is 12 squared?",
        "plan:consensus",
    ),  # fmt: skip
    # ---- multi-step
    ("Translate 'the train leaves at noon' into German and then count the tokens.", "translator > tokenizer"),
    (
        "First summarise the article, after that tell me its sentiment.\n\n" + _ARTICLE,
        "summarizer > sentiment",
    ),
    (
        "1. Summarize the text\n2. Translate the summary into French\n\n" + _ARTICLE,
        "summarizer > translator",
    ),
    (
        "Please store the note 'my locker number is 218' and after that tell me what my locker number is.",
        "archivist > rag-answerer",
    ),
    (
        "Take a snapshot called nightly-5, then compact the index, then show the vault stats.",
        "snapshotter > indexer > vault-stats",
    ),  # fmt: skip
    (
        "Step 1: extract the keywords. Step 2: format them as a markdown table.\n\n" + _ARTICLE,
        "keyword-extractor > formatter",
    ),
    ("Write a Python function that sorts a list, then analyse its complexity.", "coder > code-analyzer"),
    (
        "Detect the language of 'Wie spät ist es?' and then translate it into English.",
        "language-detector > translator",
    ),
    # ---- must be refused (out of scope, vague, or a required parameter missing)
    ("Send an email to my boss saying I'm sick", "clarify"),
    ("What's the score of the football game tonight?", "clarify"),
    ("Help me", "clarify"),
    ("Can you do the thing we talked about?", "clarify"),
    ("Transfer 200 euros to my savings account", "clarify"),
    ("Call my mother", "clarify"),
    ("Translate this for me: Guten Morgen", "clarify"),  # into which language?
    ("Get me the record please", "clarify"),  # which id?
    ("Put this text into a different format: a=1, b=2", "clarify"),  # which format?
    ("Sort these tickets into categories: printer broken; need vacation", "clarify"),  # which labels?
)
