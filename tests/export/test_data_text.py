"""Tests for the text corpus builder and its readers (no network, no packages, a few seconds)."""

from __future__ import annotations

import gzip
import io
import json
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import pytest

from export.data import text as data_text
from export.data.archives import Package, UnsafeArchiveError, confined_path, extract_members
from export.data.clean import clean_text, reflow, slug, strip_gutenberg
from export.data.rdata import LazyLoadDB, RDataError, RPairlist, unserialize
from export.data.sword import OsisCollector, read_books, read_ztext_slots, strip_osis
from export.data.text import Source, Work, austen_text, write_outputs

# --- R serialization: build XDR streams by hand -------------------------------------------------

NILVALUE, SYMSXP, LISTSXP, ENVSXP, CHARSXP = 254, 1, 2, 4, 9
LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP, REFSXP = 10, 13, 14, 16, 19, 255
HAS_ATTR, HAS_TAG = 1 << 9, 1 << 10
UTF8 = (1 << 3) << 12


def xdr_int(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


def header(version: int = 3) -> bytes:
    out = b"X\n" + xdr_int(version, 0x040201, 0x030500)
    if version == 3:
        out += xdr_int(5) + b"UTF-8"
    return out


def charsxp(s: str | None) -> bytes:
    if s is None:
        return xdr_int(CHARSXP, -1)
    raw = s.encode("utf-8")
    return xdr_int(CHARSXP | UTF8, len(raw)) + raw


def strsxp(values: list[str | None], attr: bytes = b"") -> bytes:
    flags = STRSXP | (HAS_ATTR if attr else 0)
    return xdr_int(flags, len(values)) + b"".join(charsxp(v) for v in values) + attr


def names_attr(names: list[str], sym: bytes | None = None) -> bytes:
    """A pairlist ``(names = c(...))``; ``sym`` lets a test pass a REFSXP for the symbol."""
    sym = sym if sym is not None else xdr_int(SYMSXP) + charsxp("names")
    return xdr_int(LISTSXP | HAS_TAG) + sym + strsxp(names) + xdr_int(NILVALUE)


def test_character_vector_with_na_and_unicode() -> None:
    data = header() + strsxp(["EMMA", "", None, "Miss Woodhouse’s £5"])
    value = unserialize(data)
    assert value.rtype == "STRSXP"
    assert list(value) == ["EMMA", "", None, "Miss Woodhouse’s £5"]
    assert value.attributes == {}


def test_version_2_header_and_names_attribute() -> None:
    value = unserialize(header(2) + strsxp(["a", "b"], attr=names_attr(["x", "y"])))
    assert list(value) == ["a", "b"]
    assert value.names == ["x", "y"]
    assert value.as_dict() == {"x": "a", "y": "b"}


def test_list_with_vectors_and_symbol_reference() -> None:
    # list(first = c(1L, NA), second = list(z = TRUE)). Attributes follow the elements, so the inner
    # list's names come first and the outer 'names' symbol is a back-reference to it.
    inner = xdr_int(VECSXP | HAS_ATTR, 1) + xdr_int(LGLSXP, 1, 1) + names_attr(["z"])
    data = (header() + xdr_int(VECSXP | HAS_ATTR, 2)
            + xdr_int(INTSXP, 2, 1, -(2**31))
            + inner
            + names_attr(["first", "second"], sym=xdr_int(REFSXP | (1 << 8))))
    value = unserialize(data).as_dict()
    assert list(value["first"]) == [1, None]  # NA_integer_ -> None
    assert value["second"].rtype == "VECSXP"
    assert list(value["second"][0]) == [True]
    assert value["second"].names == ["z"]


def test_doubles_and_na_real() -> None:
    na_real = struct.pack(">II", 0x7FF00000, 1954)
    data = header() + xdr_int(REALSXP, 3) + struct.pack(">d", 1.5) + na_real + struct.pack(">d", -2.0)
    assert list(unserialize(data)) == [1.5, None, -2.0]


def test_pairlist_is_read() -> None:
    data = header() + xdr_int(LISTSXP | HAS_TAG) + xdr_int(SYMSXP) + charsxp("a") + strsxp(["v"]) \
        + xdr_int(NILVALUE)
    value = unserialize(data)
    assert isinstance(value, RPairlist)
    assert value.as_dict()["a"] == ["v"]


def test_unexpected_input_fails_clearly() -> None:
    with pytest.raises(RDataError, match="not R serialization"):
        unserialize(b"PK\x03\x04 nonsense")
    with pytest.raises(RDataError, match="ENVSXP"):
        unserialize(header() + xdr_int(ENVSXP, 0))
    with pytest.raises(RDataError, match="truncated"):
        unserialize(header() + xdr_int(STRSXP, 3) + charsxp("only one"))
    with pytest.raises(RDataError, match="version"):
        unserialize(b"X\n" + xdr_int(9, 0, 0))


def test_lazy_load_database(tmp_path: Path) -> None:
    """A two-object .rdx/.rdb pair, laid out as R writes package data."""
    blobs = {"emma": header() + strsxp(["EMMA", "", "By Jane Austen"]),
             "persuasion": header() + strsxp(["Persuasion"])}
    rdb, offsets = b"", {}
    for name, payload in blobs.items():
        framed = struct.pack(">I", len(payload)) + zlib.compress(payload)
        offsets[name] = (len(rdb), len(framed))
        rdb += framed
    variables = (xdr_int(VECSXP | HAS_ATTR, len(offsets))
                 + b"".join(xdr_int(INTSXP, 2, *pos) for pos in offsets.values())
                 + names_attr(list(offsets)))
    index = (header() + xdr_int(VECSXP | HAS_ATTR, 3)
             + variables + xdr_int(VECSXP, 0) + xdr_int(LGLSXP, 1, 1)
             + names_attr(["variables", "references", "compressed"]))
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(index))
    (tmp_path / "Rdata.rdb").write_bytes(rdb)

    db = LazyLoadDB(tmp_path / "Rdata")
    assert db.names() == ["emma", "persuasion"]
    assert list(db.load("emma")) == ["EMMA", "", "By Jane Austen"]
    assert list(db.load("persuasion")) == ["Persuasion"]
    with pytest.raises(KeyError, match="known: emma, persuasion"):
        db.load("lady_susan")


# --- SWORD zText ----------------------------------------------------------------------------------

def write_ztext(folder: Path, testament: str, blocks: list[list[str]]) -> None:
    """A zText testament: each block is a list of slot texts; slot 0 of the index stays empty."""
    folder.mkdir(parents=True, exist_ok=True)
    bzs, bzv, bzz = b"", struct.pack("<IIH", 0, 0, 0), b""
    for number, slots in enumerate(blocks):
        raw = b""
        for slot in slots:
            data = slot.encode("utf-8")
            bzv += struct.pack("<IIH", number, len(raw), len(data) & 0xFFFF)  # 16 bits, as osis2mod
            raw += data
        packed = zlib.compress(raw)
        bzs += struct.pack("<III", len(bzz), len(packed), len(raw))
        bzz += packed
    (folder / f"{testament}.bzs").write_bytes(bzs)
    (folder / f"{testament}.bzv").write_bytes(bzv)
    (folder / f"{testament}.bzz").write_bytes(bzz)


RUTH = [
    '<div osisID="Ruth" sID="b1" type="book"/><milestone n="Ruth" type="x-usfm-h"/>'
    '<title type="main">The Book of Ruth</title><div type="introduction" sID="i1"/>An introduction.'
    '<div type="introduction" eID="i1"/>',
    '<chapter n="1" osisID="Ruth.1" sID="Ruth.1"/><title>A heading</title>',
    '<div sID="p1" type="x-p"/><w lemma="strong:H1">In</w> the days<note placement="foot">'
    '<reference type="annotateRef">1:1 </reference>A <catchWord>note</catchWord>.</note>when'
    ' the judges judged,',
    'there was a famine &amp; a man went to Moab.<div eID="p1" type="x-p"/>',
    '<div sID="p2" type="x-p"/><q who="Naomi">“Go,”</q>said Naomi.<chapter eID="Ruth.1"/>',
]


def test_sword_reader_books_chapters_paragraphs(tmp_path: Path) -> None:
    module = tmp_path / "modules" / "texts" / "ztext" / "web"
    psalm = ['<chapter osisID="Ps.1" sID="Ps.1"/><title type="psalm">A Psalm.</title>'
             '<lg><l sID="l1"/>Blessed is the man<l eID="l1"/> <l sID="l2"/>who walks.<l eID="l2"/></lg>'
             '<title type="acrostic">ALEPH</title>'
             '<note type="crossReference"><reference>Ps 2</reference></note><chapter eID="Ps.1"/>']
    write_ztext(module, "ot", [['<milestone type="x-importer"/>'], RUTH, psalm])
    books = read_books(module)
    assert [(b.osis_id, b.name) for b in books] == [("Ruth", "Ruth"), ("Ps", "Ps")]
    assert books[0].chapters == [[
        "In the days when the judges judged, there was a famine & a man went to Moab.",
        "“Go,” said Naomi.",
    ]]
    assert books[1].chapters == [["A Psalm.", "Blessed is the man who walks."]]
    assert books[0].text() == ("Ruth\n\nIn the days when the judges judged, there was a famine & a man "
                               "went to Moab.\n\n“Go,” said Naomi.\n")


def test_sword_reader_recovers_wrapped_16_bit_sizes(tmp_path: Path) -> None:
    long_chapter = '<chapter osisID="Jonah.1" sID="Jonah.1"/>' + "word " * 14000 + '<chapter eID="Jonah.1"/>'
    assert len(long_chapter) > 65536
    write_ztext(tmp_path, "nt", [[long_chapter, "<chapter osisID='X.1'/>next slot"]])
    slots = list(read_ztext_slots(tmp_path, "nt"))
    assert slots[0] == long_chapter
    assert slots[1].endswith("next slot")


def test_sword_reader_rejects_inconsistent_index(tmp_path: Path) -> None:
    write_ztext(tmp_path, "ot", [["text"]])
    (tmp_path / "ot.bzv").write_bytes(struct.pack("<IIH", 5, 0, 4))  # block 5 does not exist
    with pytest.raises(ValueError, match="block 5"):
        list(read_ztext_slots(tmp_path, "ot"))


@pytest.mark.parametrize(("fragment", "expected"), [
    ('God<note placement="foot">The Hebrew word is “Elohim”.</note>created', "God created"),
    ('Christ,<note placement="foot">Messiah</note>which', "Christ, which"),
    ('tree<note>TR reads “Book”</note> of life', "tree of life"),
    ('coins<note n="a"><rdg type="alternate">x</rdg></note>.', "coins."),
    ('<q who="Jesus">“Yes.”</q>Then he', "“Yes.” Then he"),
    ('two coins</q> <note>An assarion.</note> <q>? Not one', "two coins? Not one"),
    ('<title type="main">Heading</title>Text <w lemma="x">here</w>', "Text here"),
])
def test_note_and_markup_stripping(fragment: str, expected: str) -> None:
    assert strip_osis(fragment) == expected


def test_osis_text_outside_chapters_is_dropped() -> None:
    collector = OsisCollector()
    collector.feed('<div type="front" sID="f"/>Preface text<div type="front" eID="f"/>Stray.')
    collector.feed('<chapter osisID="Jas.1" sID="Jas.1"/>Paul, a servant.<chapter eID="Jas.1"/>Glossary')
    books = collector.finish()
    assert [c for b in books for c in b.chapters] == [["Paul, a servant."]]


# --- text cleaning ----------------------------------------------------------------------------

GUTENBERG = """The Project Gutenberg EBook of Hamlet

This eBook is for the use of anyone anywhere at no cost.

*** START OF THIS PROJECT GUTENBERG EBOOK HAMLET ***

HAMLET

Fran. Who's there?

*** END OF THIS PROJECT GUTENBERG EBOOK HAMLET ***

Updated editions will replace the previous one. The Full Project Gutenberg License...
"""

OLD_GUTENBERG = """**The Project Gutenberg Etext of Sonnets**
Please read the legal small print.
*END*THE SMALL PRINT! FOR PUBLIC DOMAIN ETEXTS*Ver.04.29.93*END*

<<THIS ELECTRONIC VERSION OF THE COMPLETE WORKS OF WILLIAM
SHAKESPEARE IS COPYRIGHT 1990-1993 BY WORLD LIBRARY, INC.>>

From fairest creatures we desire increase,

End of Project Gutenberg Etext of Sonnets
"""


def test_gutenberg_header_and_footer_are_stripped() -> None:
    assert clean_text(strip_gutenberg(GUTENBERG)) == "HAMLET\n\nFran. Who's there?\n"
    assert clean_text(strip_gutenberg(OLD_GUTENBERG)) == "From fairest creatures we desire increase,\n"
    plain = "HAMLET\n\nby William Shakespeare\n"
    assert strip_gutenberg(plain) == plain


def test_clean_text_and_reflow() -> None:
    raw = "\ufeffOne\r\nline\x07 two\t\r\n\r\n\r\n\r\nPara\u00a0two\x0c\n________\n"
    assert clean_text(raw) == "One\nline two\n\nPara two\n"
    assert reflow("a hard\nwrapped line\n\n\nnext\n  para\n") == "a hard wrapped line\n\nnext para"


def test_austen_text() -> None:
    lines = ["EMMA", "", "CHAPTER I", "", "", "Emma Woodhouse, _handsome_, clever,", "and rich.", "",
             None, "A NOTE ON THE TEXT", "", "Editor's words."]
    assert austen_text(lines) == "EMMA\n\nCHAPTER I\n\nEmma Woodhouse, handsome, clever, and rich.\n"


def test_slug() -> None:
    assert slug("1 John") == "1_john"
    assert slug("Daniel (Greek)") == "daniel_greek"
    assert slug("Song of Solomon") == "song_of_solomon"


# --- archive confinement ----------------------------------------------------------------------

def make_tar(members: dict[str, bytes], links: dict[str, str] | None = None) -> tarfile.TarFile:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type = tarfile.SYMTYPE
            info.linkname = target
            tar.addfile(info)
    buf.seek(0)
    return tarfile.open(fileobj=buf)


@pytest.mark.parametrize("name", ["../evil.txt", "a/../../evil.txt", "/etc/evil.txt", "C:/evil.txt"])
def test_archive_paths_must_stay_inside(tmp_path: Path, name: str) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(UnsafeArchiveError):
        extract_members(make_tar({"good/ok.txt": b"ok", name: b"bad"}), dest)
    assert not (tmp_path / "evil.txt").exists()

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr(name, b"bad")
    with zipfile.ZipFile(buf) as zf, pytest.raises(UnsafeArchiveError):
        extract_members(zf, dest)


def test_archive_extracts_files_and_never_creates_links(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    tar = make_tar({"./pkg/a.txt": b"A", "pkg/skip.bin": b"S"}, links={"pkg/link": "/etc/passwd"})
    n = extract_members(tar, dest, keep=lambda name: name.endswith(".txt") or name == "pkg/link")
    assert n == 1
    assert (dest / "pkg" / "a.txt").read_bytes() == b"A"
    assert not (dest / "pkg" / "skip.bin").exists()
    assert not (dest / "pkg" / "link").exists() and not (dest / "pkg" / "link").is_symlink()


def test_confined_path_does_not_follow_symlinks_out(tmp_path: Path) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "escape").symlink_to(tmp_path)
    with pytest.raises(UnsafeArchiveError, match="outside"):
        confined_path(dest, "escape/evil.txt")
    assert confined_path(dest, "./a/b.txt") == dest.resolve() / "a" / "b.txt"


# --- output ------------------------------------------------------------------------------------

def fake_sources(tmp_path: Path) -> list[Source]:
    pkg = Package("r-cran-janeaustenr", "deb", tmp_path / "x.deb", tmp_path, "1.0.0-1")
    works = [Work("austen", "emma", "Emma", "EMMA\n\nOne two three.\n"),
             Work("austen", "persuasion", "Persuasion", "Persuasion\n\nFour five.\n")]
    return [Source("austen", pkg, {"texts": "public domain", "package": "MIT"}, works)]


def test_write_outputs_split_by_work_and_idempotent(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sources = fake_sources(tmp_path)
    data_text.check_splits(sources)
    manifest = write_outputs(sources, out)

    assert (out / "train.txt").read_text(encoding="utf-8") == "EMMA\n\nOne two three.\n"
    assert (out / "val.txt").read_text(encoding="utf-8") == "Persuasion\n\nFour five.\n"
    assert (out / "works" / "austen" / "emma.txt").exists()
    saved = json.loads((out / "sources.json").read_text(encoding="utf-8"))
    assert saved == manifest
    austen = saved["sources"]["austen"]
    assert austen["version"] == "1.0.0-1"
    assert [(w["id"], w["split"], w["words"]) for w in austen["works"]] == [
        ("emma", "train", 4), ("persuasion", "val", 3)]
    assert saved["splits"]["val"]["words"] == 3

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    write_outputs(sources, out)
    after = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    assert before == after  # nothing rewritten on a second run
    assert "austen" in data_text.summary_table(manifest)


def test_missing_validation_work_is_an_error(tmp_path: Path) -> None:
    sources = fake_sources(tmp_path)
    sources[0].works.pop()  # drop persuasion
    with pytest.raises(data_text.DataError, match="persuasion"):
        data_text.check_splits(sources)
