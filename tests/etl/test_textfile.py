import gzip

import numpy as np
import pandas as pd
import pytest

from core.errors import InputFileError
from etl import quarantine as q
from etl.quarantine import Quarantine
from etl.readers.textfile import LINE, Header, read_all, read_csv_chunks

HEADER = Header(("id", "name"), "test", optional=("note",))


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_line_numbers_quotes_encoding_and_field_counts(tmp_path):
    data = (
        b"\xef\xbb\xbfid,name,note\n"  # BOM, line 1
        b"1,plain,\n"  # 2
        b'2,"comma, inside","multi\nline"\n'  # 3-4: one record over two lines
        b"3,caf\xe9,latin-1\n"  # 5: invalid UTF-8
        b"\n"  # 6: blank, ignored
        b"4,too,many,fields\n"  # 7
        b'5,"a"b,strict quoting\n'  # 8: unparsable
        b'6,"say ""hi""",ok'  # 9: no final newline
    )
    path = _write(tmp_path / "t.csv", data)
    qq = Quarantine()
    frame = read_all(path, HEADER, qq)
    assert frame["id"].tolist() == ["1", "2", "6"]
    assert frame[LINE].tolist() == [2, 3, 9]
    assert frame.loc[1, "note"] == "multi\nline"
    assert frame.loc[2, "name"] == 'say "hi"'
    assert {(line, reason) for _, line, reason, *_ in qq.rows} == {
        (5, q.INVALID_ENCODING),
        (7, q.WRONG_FIELD_COUNT),
        (8, q.UNPARSABLE_ROW),
    }
    raw = {line: text for _, line, _, text, _ in qq.rows}
    assert raw[5] == "3,caf\\xe9,latin-1"
    assert raw[7] == "4,too,many,fields"


def test_unterminated_quote_quarantines_its_line_and_the_next_lines_still_load(tmp_path):
    path = _write(tmp_path / "t.csv", b'id,name,note\n1,a,b\n2,"open,x\n3,c,d\n')
    qq = Quarantine()
    frame = read_all(path, HEADER, qq)
    assert frame["id"].tolist() == ["1", "3"]
    [row] = qq.rows
    assert (row.line, row.reason, row.raw) == (3, q.UNTERMINATED_QUOTE, '2,"open,x')
    assert "still open at the end of the file" in row.detail


def test_gzip_by_content_and_chunks(tmp_path):
    rows = "".join(f"{i},n{i},\n" for i in range(10))
    path = tmp_path / "t.csv"  # gzipped content, plain name
    path.write_bytes(gzip.compress(("id,name,note\n" + rows).encode()))
    chunks = list(read_csv_chunks(path, HEADER, Quarantine(), chunk_rows=4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert pd.concat(chunks)[LINE].tolist() == list(range(2, 12))


def test_header_only_file_gives_an_empty_frame(tmp_path):
    frame = read_all(_write(tmp_path / "t.csv", b"id,name\n"), HEADER, Quarantine())
    assert len(frame) == 0 and list(frame.columns) == ["id", "name", LINE]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty file, expected a header id,name for --format test"),
        (b"a,b,c\n1,2,3\n", "expected columns id,name (optional: note) for --format test, got a,b,c"),
    ],
)
def test_bad_headers_are_one_line_errors(tmp_path, data, message):
    path = _write(tmp_path / "t.csv", data)
    with pytest.raises(InputFileError) as err:
        read_all(path, HEADER, Quarantine())
    assert str(err.value) == f"{path}: {message}"
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputFileError, match=r"nope\.csv: file not found \(needed by --format test\)"):
        read_all(tmp_path / "nope.csv", HEADER, Quarantine())


def test_truncated_gzip_is_a_one_line_error(tmp_path):
    data = gzip.compress(("id,name\n" + "".join(f"{i},n{i}\n" for i in range(5000))).encode())
    path = _write(tmp_path / "t.csv.gz", data[: len(data) // 2])
    with pytest.raises(InputFileError, match=r"t\.csv\.gz: unreadable after line \d+"):
        read_all(path, HEADER, Quarantine())


def test_wrong_field_count_names_the_expected_and_the_actual_count(tmp_path):
    path = _write(tmp_path / "t.csv", b"id,name\n1,a,extra\n2\n3,c\n")
    qq = Quarantine()
    assert read_all(path, HEADER, qq)["id"].tolist() == ["3"]
    assert [(r.line, r.reason, r.detail) for r in qq.rows] == [
        (2, q.WRONG_FIELD_COUNT, "expected 2 fields, got 3"),
        (3, q.WRONG_FIELD_COUNT, "expected 2 fields, got 1"),
    ]


def test_fields_past_the_csv_module_limit_load_and_past_ours_are_quarantined(tmp_path):
    import csv

    from etl.readers import textfile

    big = "x" * (csv.field_size_limit() + 10)  # the csv module alone: "field larger than ..."
    huge = "y" * (textfile.FIELD_LIMIT + 1)
    path = _write(tmp_path / "t.csv", (
        f'id,name\n1,"{big}"\n2,{big}\n3,"{huge}"\n4,{huge}\n5,ok\n').encode())
    qq = Quarantine()
    frame = read_all(path, HEADER, qq)
    assert frame["id"].tolist() == ["1", "2", "5"]
    assert frame["name"].tolist()[:2] == [big, big]
    assert [(r.line, r.reason) for r in qq.rows] == [(4, q.FIELD_TOO_LONG), (5, q.FIELD_TOO_LONG)]
    assert qq.rows[0].detail == f"{len(huge):,} characters (limit {textfile.FIELD_LIMIT:,})"
    assert csv.field_size_limit() == 131072  # the process-wide limit is left as it was


def test_a_quote_that_closes_into_a_wrong_row_quarantines_only_its_first_line(tmp_path):
    data = (b'id,name,note\n'
            b'1,"open,x\n'  # 2: opens a quote ...
            b'2,b,c\n'  # 3
            b'3,c,d"\n'  # 4: ... that a literal quote closes: a row of 2 fields, not 3
            b'4,"multi\nline",ok\n'  # 5-6: a real multi-line row still loads
            b'5,"a"b,c\n')  # 7: broken quoting
    qq = Quarantine()
    frame = read_all(_write(tmp_path / "t.csv", data), HEADER, qq)
    assert frame["id"].tolist() == ["2", "3", "4"]  # lines 3 and 4 read again, alone
    assert frame[LINE].tolist() == [3, 4, 5]
    assert frame["note"].tolist() == ["c", 'd"', "ok"]
    assert [(r.line, r.reason) for r in qq.rows] == [
        (2, q.UNTERMINATED_QUOTE), (7, q.UNPARSABLE_ROW)]
    assert "closes on line 4 into a row of 2 fields, expected 3" in qq.rows[0].detail


def test_a_quote_left_open_stops_after_max_record_lines(tmp_path, monkeypatch):
    from etl.readers import textfile

    monkeypatch.setattr(textfile, "MAX_RECORD_LINES", 5)
    rows = "".join(f"{i},n{i},\n" for i in range(2, 12))
    qq = Quarantine()
    frame = read_all(_write(tmp_path / "t.csv", f'id,name,note\n1,"open,\n{rows}'.encode()),
                     HEADER, qq)
    assert frame["id"].tolist() == [str(i) for i in range(2, 12)]  # every later line loads
    assert [(r.line, r.reason) for r in qq.rows] == [(2, q.UNTERMINATED_QUOTE)]
    assert "still open after 5 lines" in qq.rows[0].detail


def test_unterminated_quotes_cost_linear_time(tmp_path, monkeypatch):
    """By construction, not by the clock: count the characters the quote scanner and the
    parser are handed. Before, each line after an open quote re-joined and re-parsed the whole
    growing record (quadratic in the lines it spans)."""
    from etl.readers import textfile

    seen = {"chars": 0}
    for name in ("_quote_open", "_parse"):
        real = getattr(textfile, name)

        def counting(text, *args, _real=real):
            seen["chars"] += len(text)
            return _real(text, *args)

        monkeypatch.setattr(textfile, name, counting)

    def cost(blocks: int) -> tuple[int, int, int]:
        # each block: an unterminated quote, 600 plain rows, a row with a literal quote
        # (`12" screen`), a real two-line quoted row
        block = ('x,"never closed,\n' + "".join(f"{i},row {i},\n" for i in range(600))
                 + 'y,12" screen,\n' + 'z,"two\nlines",\n')
        data = "id,name,note\n" + block * blocks
        seen["chars"] = 0
        qq = Quarantine()
        frame = read_all(_write(tmp_path / f"t{blocks}.csv", data.encode()), HEADER, qq)
        assert len(qq) == blocks  # only the unterminated lines
        assert len(frame) == blocks * 603 - blocks  # every other row loads
        return seen["chars"], len(data), len(frame)

    for blocks in (1, 4):
        chars, size, _ = cost(blocks)
        assert chars <= 4 * size, (blocks, chars, size)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (bytes(range(256)) * 64, "not a text (CSV) file: its first bytes are binary"),
        (gzip.compress(np.random.default_rng(0).bytes(5000)), "not a text (CSV) file"),
        ("id,name\n1,a\n".encode("utf-16"), "UTF-16 text: save it as UTF-8"),
        (b"PAR1\x15\x04\x15", "a Parquet file, not CSV text: name it t.parquet"),
        (b"\n\n\n", "empty file"),
    ],
)
def test_files_that_are_not_csv_text_say_so(tmp_path, data, message):
    path = _write(tmp_path / "t.csv", data)
    with pytest.raises(InputFileError) as err:
        read_all(path, HEADER, Quarantine())
    assert message in str(err.value) and "\n" not in str(err.value)
