"""The labelled goals of ``benchmarks/planning.py``, written after the method and apart from the examples.

Each entry is ``(goal, expected)``: ``expected`` is the agents of the plan in order (``"a > b"``), a
built-in plan (``"plan:rag"``, ``"plan:report"``, ``"plan:consensus"``) or ``"clarify"`` (the goal should be
refused as unclear, foreign to the collective, or missing a required parameter).
"""

from __future__ import annotations

__all__ = ("GOALS",)

_LETTER = (
    "Dear team, the shipment arrived two weeks late and half the boxes were damaged. I expect a refund "
    "by Friday. Regards, Anna Berg, anna.berg@example.org"
)
_CODE = (
    "def f(x):\n    if x:\n        for i in range(x):\n            if i % 2:\n                print(i)\n"
    "    return x"
)

GOALS: tuple[tuple[str, str], ...] = (
    # ---- inference: generator, chat, summarizer, classifier, extractor, translator, coder, tokenizer
    ("could you dream up a haiku on the subject of rain", "generator"),
    ("I'd like a catchy tagline for my bike repair shop", "generator"),
    ("write a four line rhyme for a wedding card", "generator"),
    ("compose a short fairy tale about a clever fox", "generator"),
    ("hey, let's just talk for a bit — how's it going?", "chat"),
    ("keep chatting with me in session travel-planning about my trip", "chat"),
    ("i want to converse with the assistant", "chat"),
    (f"give me the short version of this: {_LETTER}", "summarizer"),
    (
        "too long, didn't read — shrink the memo below into 2 sentences\n\nThe board met to review the "
        "budget. Spending rose 4%. Marketing asked for more. The board declined and froze hiring.",
        "summarizer",
    ),
    (
        "what's the essence of this paragraph in a nutshell: Cats sleep most of the day and hunt at night.",
        "summarizer",
    ),
    ("is this email 'Win a free cruise now!!!' spam or ham?", "classifier"),
    ("bucket this complaint into billing, shipping or product: my parcel never came", "classifier"),
    ("tag the headline 'Stocks tumble as rates rise' with one of: finance, sport, weather", "classifier"),
    (
        "from this invoice get the fields vendor, amount and due date as JSON: ACME Ltd, 120 EUR, due 3 May",
        "extractor",
    ),
    ("fill out the properties name and email from this signature: Bob Stone, bob@stone.io", "extractor"),
    ("parse the fields title, year into json: The Matrix came out in 1999", "extractor"),
    ("put 'where is the train station' into Spanish", "translator"),
    ("how would a German say 'thank you very much for your help'?", "translator"),
    ("render this into Japanese please: Welcome to our store", "translator"),
    ("write me a python function that checks whether a string is a palindrome", "coder"),
    ("implement fizzbuzz in javascript", "coder"),
    ("I need a bash one-liner to count the lines in all .txt files", "coder"),
    ("how many tokens does 'The quick brown fox jumps over the lazy dog' take?", "tokenizer"),
    ("token count for this prompt, please: You are a helpful assistant. Answer briefly.", "tokenizer"),
    ("break 'unbelievable' into the model's tokens", "tokenizer"),
    # ---- compression
    ("losslessly pack this server log so it takes less space: ERROR disk full ERROR disk full", "compressor"),
    ('squash this json for the wire: {"a": 1, "a2": 1, "a3": 1}', "compressor"),
    ("shrink the following chat transcript without losing a byte: hi / hello / hi again", "compressor"),
    ("unpack this ΣLANG frame: U0lHTUEBAAAA", "decompressor"),
    ("give me back the plain bytes of this compressed frame: U0lHTUEBAAAA", "decompressor"),
    ("inflate the frame below to its original text\n\nU0lHTUEBAAAA", "decompressor"),
    (
        "how much of this batch is repeated content?\n\nhello world\n\nhello world\n\nbye world",
        "deduplicator",
    ),
    ("find the duplicate chunks across these three log files\n\nA B C\n\nA B C\n\nA B D", "deduplicator"),
    ("dedup report for these messages please\n\nping\n\nping\n\npong", "deduplicator"),
    ("break this frame into its glyphs: U0lHTUEBAAAA", "glyph-encoder"),
    ("which reusable units does the frame U0lHTUEBAAAA point to?", "glyph-encoder"),
    ("show me the glyph and literal runs making up this frame: U0lHTUEBAAAA", "glyph-encoder"),
    (
        "cut the following context down to 120 tokens, keep the numbers: Revenue was 4.2M in Q1. Costs "
        "fell. The CEO spoke at length about culture.",
        "context-optimizer",
    ),
    (
        "make this fit in a 64 token window: The plan has three phases. Phase one is research.",
        "context-optimizer",
    ),
    (
        "prune the passages so they fit a budget of 256 tokens: A long passage about rivers and lakes.",
        "context-optimizer",
    ),
    (
        "learn a compression dictionary from these sample lines\n\nGET /a 200\n\nGET /b 200\n\nGET /c 404",
        "dictionary-trainer",
    ),
    ('build a zstd dictionary out of these examples\n\n{"id":1}\n\n{"id":2}', "dictionary-trainer"),
    (
        "train the codec's dictionary on our typical messages\n\nhello alice\n\nhello bob",
        "dictionary-trainer",
    ),
    ("garbage-collect the RSU store", "rsu-manager"),
    ("how many semantic units are in the shared chunk store right now?", "rsu-manager"),
    ("pin the RSUs of this frame so they stay: U0lHTUEBAAAA", "rsu-manager"),
    ("is U0lHTUEBAAAA a valid ΣLANG frame?", "codec-inspector"),
    ("check the checksum and header of this frame: U0lHTUEBAAAA", "codec-inspector"),
    ("what dictionary id and version does this frame carry: U0lHTUEBAAAA", "codec-inspector"),
    # ---- storage
    ("please keep this for later: our wifi password is tulip-42", "archivist"),
    ("add the following paragraph to the knowledge base: Refunds take 5 days.", "archivist"),
    ("stash this memo in the vault: quarterly review moved to June", "archivist"),
    ("search our stored stuff for anything on vacation policy", "retriever"),
    ("find the 3 nearest stored passages to 'server outage'", "retriever"),
    ("which of my saved notes talk about invoices?", "retriever"),
    ("pull up record inv-2024-07 by its id", "fetcher"),
    ("show me the stored entry with id 8f3a", "fetcher"),
    ("fetch document doc-99 from the vault", "fetcher"),
    ("delete the stored note with id tmp-1", "eraser"),
    ("permanently remove record old-42 from storage", "eraser"),
    ("crypto-shred everything our tenant has stored", "eraser"),
    ("rotate the KEK now", "key-warden"),
    ("our master key might be compromised — re-wrap the data keys under a new one", "key-warden"),
    ("issue a fresh data key for my tenant", "key-warden"),
    ("compact the vector index after the big delete", "indexer"),
    ("what's the status of the search index — how many tombstones?", "indexer"),
    ("rebuild the faiss index from scratch", "indexer"),
    ("take a backup of the vault called pre-release", "snapshotter"),
    ("restore the vault from the snapshot named nightly-3", "snapshotter"),
    ("list all the vault snapshots we have", "snapshotter"),
    ("what's our cache hit rate?", "vault-stats"),
    ("how large is the write-ahead log at the moment", "vault-stats"),
    ("give me the vault's cache statistics", "vault-stats"),
    # ---- analysis
    (f"was the writer of this angry or pleased? {_LETTER}", "sentiment"),
    ("is the tone of 'Absolutely loved the service, will come back!' positive?", "sentiment"),
    ("gauge the mood of this comment: meh, it was fine I guess", "sentiment"),
    (f"what are the main keywords of this letter: {_LETTER}", "keyword-extractor"),
    (
        "pick out the top 5 key phrases in: Solar panels convert sunlight into electricity efficiently.",
        "keyword-extractor",
    ),
    ("suggest some tags for this post: A beginner's guide to sourdough baking at home", "keyword-extractor"),
    (f"list every email address and person name in this: {_LETTER}", "entity-extractor"),
    ("which dates and amounts of money appear in: Pay $300 by 2024-05-01 or $350 after.", "entity-extractor"),
    (
        "spot the URLs and phone numbers in: call +1 212 555 0199 or see https://example.com",
        "entity-extractor",
    ),
    ("which language is 'Dziękuję bardzo' written in?", "language-detector"),
    ("detect the language: Hoe gaat het met je?", "language-detector"),
    ("what tongue is this text in — 'Obrigado pela ajuda'", "language-detector"),
    ("how close in meaning are 'the car is fast' and 'the automobile is quick'?", "similarity"),
    ("do 'I love dogs' and 'Dogs are my favourite' say the same thing?", "similarity"),
    (
        "rank these options against my query\n\nbest pizza in town\n\npizza places nearby\n\ncar repair",
        "similarity",
    ),
    (f"how complex is this function, in cyclomatic terms?\n\n{_CODE}", "code-analyzer"),
    (f"give me the maintainability index of this snippet: {_CODE}", "code-analyzer"),
    ("list the functions and imports in this module: import os\ndef a(): pass", "code-analyzer"),
    ("what's the average and the spread of 4, 8, 15, 16, 23, 42?", "statistician"),
    ("any outliers in these latencies: 12 13 11 12 250 13", "statistician"),
    ("compute the median and 90th percentile of 3, 1, 4, 1, 5, 9, 2, 6", "statistician"),
    (f"how well written is this, and what should I fix? {_LETTER}", "quality-critic"),
    ("grade the readability of my intro: It is what it is, basically, sort of.", "quality-critic"),
    (
        "critique this draft's style: The report was written by the team and was reviewed by the boss.",
        "quality-critic",
    ),
    # ---- synthesis
    ("tell me, based on the stored handbook, how many vacation days we get", "plan:rag"),
    ("according to our saved documents, who signed the supplier contract?", "plan:rag"),
    ("answer from the knowledge base: what's the refund window?", "plan:rag"),
    ("which agents would you use to translate a file and then summarize it? just plan it", "planner"),
    ("decompose 'clean the data then chart it' into agent steps", "planner"),
    ("draw up a step-by-step agent plan for analysing customer feedback", "planner"),
    ('merge these two json objects\n\n{"a": 1}\n\n{"b": 2}', "aggregator"),
    ("average these runs' scores\n\n0.8\n\n0.9\n\n0.7", "aggregator"),
    ("join these partial answers into one\n\nPart one.\n\nPart two.", "aggregator"),
    ("lay these findings out as a markdown report titled Weekly Ops: uptime 99.9%, 2 incidents", "reporter"),
    ("turn these results into a document with headings and a table: errors 3, warnings 12", "reporter"),
    ("compile these sections into a formatted markdown report: intro, method, results", "reporter"),
    ("which answer wins the vote: 'Paris', 'Paris', 'Lyon', 'Paris'", "consensus"),
    ("do these candidate replies agree? 'yes', 'yes', 'no', 'yes'", "consensus"),
    ("take the majority between 'blue', 'blue', 'green'", "consensus"),
    ('turn this json into yaml: {"name": "x", "size": 3}', "formatter"),
    ("express this csv as a markdown table: a,b\n1,2", "formatter"),
    ("pretty print this as JSON: name: x, size: 3", "formatter"),
    (
        "is the answer 'The deadline is May 3' backed by the source 'The deadline was moved to May 10'?",
        "verifier",
    ),
    (
        "fact-check this answer against the context\n\nThe tower is 300 m tall.\n\n"
        "The tower is 330 metres tall.",
        "verifier",
    ),
    (
        "does the context support each sentence of the reply?\n\nSales rose 5%.\n\nSales rose 5% in Q2.",
        "verifier",
    ),
    ("execute this pipeline: steps:\n  - id: a\n    agent: statistician", "workflow-runner"),
    ("run the following DAG\n\nsteps:\n  - id: s\n    agent: sentiment", "workflow-runner"),
    ('kick off the workflow defined here: {"steps": [{"id": "x", "agent": "formatter"}]}', "workflow-runner"),
    # ---- built-in plans chosen by meaning
    (
        f"give me everything you can tell about this text — tone, topics, names, language: {_LETTER}",
        "plan:report",
    ),
    (f"full analysis report of this customer message please: {_LETTER}", "plan:report"),
    ("profile the following review in a report: Great phone, poor battery.", "plan:report"),
    (
        "sample the model a few times and give me the answer most runs agree on: capital of Peru?",
        "plan:consensus",
    ),
    ("ask several times and vote: what is 17 times 3?", "plan:consensus"),
    ("use majority voting over multiple generations to answer: is a tomato a fruit?", "plan:consensus"),
    # ---- two and three steps
    (
        "summarize this and then translate the summary to French: The meeting ended early. Everyone agreed.",
        "summarizer > translator",
    ),
    ("translate 'hello friends' into Italian, then count its tokens", "translator > tokenizer"),
    (
        "Save this note: 'the spare key is under the blue pot'. Then tell me where the spare key is.",
        "archivist > rag-answerer",
    ),
    (
        "remember that the dentist appointment is on Tuesday and then remind me when the dentist "
        "appointment is",
        "archivist > rag-answerer",
    ),
    ("1. extract the keywords\n2. turn them into yaml", "keyword-extractor > formatter"),
    (
        "first detect the language of 'Guten Abend', then translate it to English",
        "language-detector > translator",
    ),
    (
        "compress this log and after that inspect the frame: WARN low memory WARN low memory",
        "compressor > codec-inspector",
    ),
    (
        "Summarize the text below. Then find its sentiment.\n\nThe product is great but shipping was slow.",
        "summarizer > sentiment",
    ),
    (
        "store 'Q3 target is 2M' in the vault; then search the vault for the Q3 target",
        "archivist > retriever",
    ),
    ("take a snapshot of the vault, then compact the index", "snapshotter > indexer"),
    (
        "1) summarize\n2) translate to German\n3) count the tokens\n\nThe weather was pleasant and the "
        "festival drew a large crowd.",
        "summarizer > translator > tokenizer",
    ),
    (
        "extract the keywords from this, then format them as json, and finally count the tokens: "
        "Electric cars reduce emissions in cities.",
        "keyword-extractor > formatter > tokenizer",
    ),
    ("write a python function that adds two numbers, then analyse its complexity", "coder > code-analyzer"),
    (
        "find the entities in 'Maria met Tom in Lisbon on 2024-03-01' and then build a report of them",
        "entity-extractor > reporter",
    ),
    ("rotate the encryption key; then show the cache statistics", "key-warden > vault-stats"),
    (
        "first summarize the review below, then judge its tone, then translate the summary into Spanish\n\n"
        "The hotel was lovely, staff friendly, breakfast average.",
        "summarizer > sentiment > translator",
    ),
    # ---- should be refused
    ("do it", "clarify"),
    ("handle the usual", "clarify"),
    ("can you sort this out for me?", "clarify"),
    ("make everything better", "clarify"),
    ("order me a taxi to the airport", "clarify"),
    ("what's the weather going to be like in Oslo tomorrow", "clarify"),
    ("turn up the thermostat", "clarify"),
    ("buy two tickets for the concert", "clarify"),
    ("text my brother happy birthday", "clarify"),
    ("translate this: Bonjour tout le monde", "clarify"),  # into which language?
    ("classify this review: loved it", "clarify"),  # which labels?
    ("restore the snapshot", "clarify"),  # which one?
    ("whatever", "clarify"),
    ("fix my printer", "clarify"),
    ("book a table for four at 8pm", "clarify"),
)
