"""A third goal set for ``benchmarks/planning.py --set fresh``, written after round 2's last change.

The held-out set (``planning_heldout.py``) was written before round 2, but its failures were seen while
round 2 iterated; this set was written once the method was frozen and scored once, so its number is the
least biased of the three. Same labels as ``planning_goals.py``.
"""

from __future__ import annotations

__all__ = ("GOALS",)

_NOTE = "Our quarterly sales grew by 12 percent, driven mostly by the new subscription tier in Europe."

GOALS: tuple[tuple[str, str], ...] = (
    ("Write a birthday poem for my grandmother.", "generator"),
    ("could u make up a riddle about time", "generator"),
    ("Draft an apology letter to a customer whose order was late.", "generator"),
    ("hi, want to chat?", "chat"),
    (f"Summarize in two sentences: {_NOTE}", "summarizer"),
    (f"tl;dr please: {_NOTE}", "summarizer"),
    ("Label 'the app crashes on login' as bug, feature request or question.", "classifier"),
    ("Pull out the fields company and amount as JSON from: Initech paid 900 USD.", "extractor"),
    ("Translate 'good luck with the exam' into Italian.", "translator"),
    ("Would you translate this into Korean: 'see you soon'", "translator"),
    ("Write a JavaScript function that debounces another function.", "coder"),
    ("Write a regex in Python that matches email addresses.", "coder"),
    ("How many tokens are in 'To be or not to be'?", "tokenizer"),
    ("Compress this text losslessly: abcabcabcabcabcabcabcabc", "compressor"),
    ("Decode the compressed frame U0lHTUEBAAAAcXdl back to text.", "decompressor"),
    ("Is the frame U0lHTUEBAAAAcXdl intact?", "codec-inspector"),
    ("Keep this in the vault: the backup runs at 2am", "archivist"),
    ("Find my saved notes about the dentist.", "retriever"),
    ("Fetch the record with id rec-77.", "fetcher"),
    ("Erase the note with id n-5 permanently.", "eraser"),
    ("Rotate our encryption keys please.", "key-warden"),
    ("Compact the search index.", "indexer"),
    ("Restore the vault from the snapshot called friday.", "snapshotter"),
    ("What is the L1 cache hit ratio of the vault?", "vault-stats"),
    ("How does this customer feel? 'I waited an hour and nobody answered.'", "sentiment"),
    (f"Give me the key phrases of: {_NOTE}", "keyword-extractor"),
    ("List the organisations and places in: Siemens opened an office in Lagos.", "entity-extractor"),
    ("Which language is 'Tack så mycket' in?", "language-detector"),
    ("Are 'buy a house' and 'purchase a home' similar in meaning?", "similarity"),
    ("Compute the median of 5, 1, 9, 3, 7.", "statistician"),
    (
        "Critique the style of this sentence: The thing was done by us in a way that was good.",
        "quality-critic",
    ),
    ("According to my stored notes, when is the backup?", "plan:rag"),
    ("Convert this CSV to JSON: a,b\n1,2", "formatter"),
    (f"Translate this to French and then summarize it: {_NOTE}", "translator > summarizer"),
    ("Store 'the gate code is 4471' then tell me the gate code.", "archivist > rag-answerer"),
    (
        "1. Detect the language\n2. Translate it into English\n\nHola a todos",
        "language-detector > translator",
    ),
    ("Write a limerick about a dog and then count its tokens.", "generator > tokenizer"),
    ("Snapshot the vault as pre-migration, then rebuild the index.", "snapshotter > indexer"),
    ("reserve a hotel room in Rome", "clarify"),
    ("what's the stock price of Apple", "clarify"),
    ("do something useful", "clarify"),
    ("Classify this ticket: my screen is black", "clarify"),  # which labels?
    ("Fetch the record.", "clarify"),  # which id?
    ("water the plants", "clarify"),
)
