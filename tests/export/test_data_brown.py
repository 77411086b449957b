"""Brown Corpus detokenisation (export/data/brown.py)."""

from __future__ import annotations

from export.data.brown import detokenise, sample_text


def test_detokenise_drops_tags_and_attaches_punctuation() -> None:
    toks = ("The/at jury/nn said/vbd ,/, ``/`` no/at evidence/nn ''/'' was/bedz found/vbn ./.").split()
    assert detokenise(toks) == 'The jury said, "no evidence" was found.'


def test_brackets_possessives_and_abbreviations() -> None:
    toks = "He/pps (/( Mr./np Allen/np Jr./np )/) didn't/dod* go/vb to/in Fulton/np 's/$ ./.".split()
    assert detokenise(toks) == "He (Mr. Allen Jr.) didn't go to Fulton's."
    assert detokenise("Mayor/nn Ivan/np Allen/np Jr./np ./.".split()) == "Mayor Ivan Allen Jr."


def test_a_sample_is_one_paragraph() -> None:
    raw = "\n\n\tOne/cd sentence/nn ./.\n\n\n\tTwo/cd more/ap !/.\n"
    assert sample_text(raw) == "One sentence. Two more!"
