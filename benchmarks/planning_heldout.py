"""A second, held-out goal set for ``benchmarks/planning.py --set heldout``.

Written before the method was changed in this round, in styles the first set (``planning_goals.py``) uses
little: terse imperatives, polite questions, payload after a colon or in quotes, typos, multi-step goals
joined by "then" / "and" / numbered lists, and goals that should be refused. Never used to pick examples,
weights or thresholds: it measures whether a change generalises. Same labels as ``planning_goals.py``.
"""

from __future__ import annotations

__all__ = ("GOALS",)

_REVIEW = "The room was spotless and the staff were lovely, but the wifi kept dropping every hour."
_FRAME = "U0lHTUEBAAAAcXdlcnR5"

GOALS: tuple[tuple[str, str], ...] = (
    # ---- generator: open-ended writing
    ("Write a short story about a lighthouse keeper who finds a message in a bottle.", "generator"),
    ("Would you kindly write a cheerful limerick about a grumpy cat?", "generator"),
    ("pen a motivational quote for monday mornings", "generator"),
    ("continue this text: 'It was a dark and stormy night, and the power had just gone out'", "generator"),
    ("Draft a friendly welcome message for new members of our hiking club.", "generator"),
    ("wirte a poem about the sea", "generator"),
    ("Generate three names for a pet goldfish.", "generator"),
    # ---- chat
    ("Hello! How are you today?", "chat"),
    ("Can we just have a casual conversation?", "chat"),
    # ---- summarizer
    (f"Summarise: {_REVIEW}", "summarizer"),
    (f"Could you please give me a brief summary of the following? {_REVIEW}", "summarizer"),
    (f"sumarize this review in one sentence: {_REVIEW}", "summarizer"),
    # ---- classifier
    ("Classify 'my card was charged twice' as billing, delivery or technical.", "classifier"),
    ("Is 'CONGRATULATIONS you won a prize, click here' spam or not spam?", "classifier"),
    # ---- extractor
    ("Extract the fields name, age and city as JSON from: Lena, 34, lives in Graz.", "extractor"),
    # ---- translator
    ("Translate to French: 'Good morning, everyone.'", "translator"),
    ('Please translate "Where is the library?" into German.', "translator"),
    ("tranlsate 'cheers mate' to spanish", "translator"),
    # ---- coder
    ("Write a Python function to reverse a linked list.", "coder"),
    ("Could you write a SQL query that returns the ten most recent orders?", "coder"),
    ("code a quicksort in rust", "coder"),
    # ---- tokenizer
    ("Count the tokens in 'Hello, world! This is a test.'", "tokenizer"),
    ("How many tokens is this sentence: The cat sat on the mat.", "tokenizer"),
    # ---- compression
    ("Compress: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "compressor"),
    (f"Decompress this frame: {_FRAME}", "decompressor"),
    ("Find repeated chunks in these notes\n\nalpha beta\n\nalpha beta\n\ngamma", "deduplicator"),
    (f"Validate the frame {_FRAME} please", "codec-inspector"),
    (f"Which glyphs make up the frame {_FRAME}?", "glyph-encoder"),
    (
        "Trim this context to 50 tokens: The system has three parts. The first part stores data. "
        "The second part indexes it. The third part answers questions.",
        "context-optimizer",
    ),
    ("Train a compression dictionary on these samples\n\nfoo=1\n\nfoo=2\n\nfoo=3", "dictionary-trainer"),
    ("Run garbage collection on the semantic unit store.", "rsu-manager"),
    # ---- storage
    ("Remember this: the wifi password is sunflower7", "archivist"),
    ("Please store the note 'Team lunch is on Thursday' in the vault.", "archivist"),
    ("Search the vault for notes about the budget.", "retriever"),
    ("Look up stored passages related to 'onboarding checklist'.", "retriever"),
    ("Get the record with id abc-123.", "fetcher"),
    ("Delete record xyz-9 from the vault.", "eraser"),
    ("Rotate the master encryption key.", "key-warden"),
    ("Rebuild the vector index.", "indexer"),
    ("Create a snapshot named before-upgrade.", "snapshotter"),
    ("Show me the vault statistics.", "vault-stats"),
    ("how many records are in the vault right now?", "vault-stats"),
    # ---- analysis
    (f"What's the sentiment of this review? {_REVIEW}", "sentiment"),
    ("is 'worst purchase ever, broke in a day' positive or negative?", "sentiment"),
    (
        "Extract keywords from: Machine learning models need large, clean datasets to train well.",
        "keyword-extractor",
    ),
    ("Find all people and places mentioned in: Ada Lovelace lived in London.", "entity-extractor"),
    ("What language is this: 'Ich habe keine Zeit'", "language-detector"),
    ("How similar are 'a red apple' and 'a crimson fruit'?", "similarity"),
    (
        "Analyze the complexity of this code: def g(n): return n if n < 2 else g(n-1) + g(n-2)",
        "code-analyzer",
    ),
    ("Compute the mean and standard deviation of 2, 4, 4, 4, 5, 5, 7, 9.", "statistician"),
    (
        "Review the writing quality of this paragraph: Their going to the store tomorow, probly.",
        "quality-critic",
    ),
    # ---- synthesis
    ("Using our stored documents, what is the return policy?", "plan:rag"),
    ("Based on the knowledge base, when does the office open?", "plan:rag"),
    ("Plan the steps to summarize a document and then translate it, but don't run anything.", "planner"),
    ("Combine these answers into one\n\nThe sky is blue.\n\nThe sea is blue too.", "aggregator"),
    ("Format these results as a markdown report with a title: 3 passed, 1 failed", "reporter"),
    ("Pick the majority answer among 'A', 'B', 'A', 'A'.", "consensus"),
    ('Convert this JSON to YAML: {"k": 1}', "formatter"),
    (
        "Check whether the answer 'Berlin is the capital of France' is supported by the context "
        "'Paris is the capital of France'.",
        "verifier",
    ),
    ('Run this workflow: {"steps": [{"id": "a", "agent": "sentiment"}]}', "workflow-runner"),
    (f"Give me a full analysis report of this text: {_REVIEW}", "plan:report"),
    (
        "Ask the model several times and return the answer most of them agree on: what is 12 squared?",
        "plan:consensus",
    ),
    # ---- multi-step
    (f"Summarize this and then translate it to German: {_REVIEW}", "summarizer > translator"),
    ("Store 'the meeting is at 3pm' and then tell me when the meeting is.", "archivist > rag-answerer"),
    (
        "1. Summarize the text\n2. Extract the keywords\n\nBees pollinate crops and are vital to farming.",
        "summarizer > keyword-extractor",
    ),
    (
        "Detect the language of 'Buongiorno a tutti' and translate it into English.",
        "language-detector > translator",
    ),
    (f"Analyse the sentiment of this review, then summarize it: {_REVIEW}", "sentiment > summarizer"),
    ("Write a haiku about snow, then count its tokens.", "generator > tokenizer"),
    ("Compress 'hello hello hello hello' and then decompress the result.", "compressor > decompressor"),
    ("Take a snapshot called nightly and then rotate the key.", "snapshotter > key-warden"),
    (
        "First summarize this, then translate the summary to Spanish, and finally count its tokens: "
        f"{_REVIEW}",
        "summarizer > translator > tokenizer",
    ),
    (
        "Write a Python function to compute factorials and then analyze its complexity.",
        "coder > code-analyzer",
    ),
    (
        f"Extract the entities from this text, then format them as YAML: {_REVIEW}",
        "entity-extractor > formatter",
    ),
    ("Save the note 'parking is on level 3'. Then tell me where parking is.", "archivist > rag-answerer"),
    # ---- should be refused
    ("help", "clarify"),
    ("Can you do the thing we discussed?", "clarify"),
    ("Please book me a flight to Paris.", "clarify"),
    ("Send an email to my boss.", "clarify"),
    ("play some music", "clarify"),
    ("What time is it in Tokyo?", "clarify"),
    ("Translate this for me: Hola, ¿cómo estás?", "clarify"),  # into which language?
    ("Delete the record.", "clarify"),  # which id?
    ("make it better", "clarify"),
    ("order a pizza", "clarify"),
    ("improve things", "clarify"),
    ("call mom", "clarify"),
)
