import gzip

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
    assert {(line, reason) for _, line, reason, _ in qq.rows} == {
        (5, q.INVALID_ENCODING),
        (7, q.WRONG_FIELD_COUNT),
        (8, q.UNPARSABLE_ROW),
    }
    raw = {line: text for _, line, _, text in qq.rows}
    assert raw[5] == "3,caf\\xe9,latin-1"
    assert raw[7] == "4,too,many,fields"


def test_unterminated_quote_is_quarantined_not_lost(tmp_path):
    path = _write(tmp_path / "t.csv", b'id,name,note\n1,a,b\n2,"open,x\n3,c,d\n')
    qq = Quarantine()
    frame = read_all(path, HEADER, qq)
    assert frame["id"].tolist() == ["1"]
    assert qq.rows == [(str(path), 3, q.UNTERMINATED_QUOTE, '2,"open,x\n3,c,d')]


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
