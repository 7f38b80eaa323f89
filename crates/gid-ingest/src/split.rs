//! A record's fields found by searching for the bytes that end them.
//!
//! The `csv` crate reads a file byte by byte through a state machine: ~14 instructions a
//! byte, the largest single cost of ingest (17 % of a month's instructions under
//! callgrind). Most records are plain: unquoted fields, or quoted ones without a doubled
//! quote. For those, [`plain_record`] jumps from one delimiter to the next with `memchr`
//! (vectorised) and gives the same fields and the same end position as the `csv` reader
//! would; anything else (a doubled quote, text after a closing quote, a quote never
//! closed) it leaves to the reader, so every odd case keeps the reader's meaning. A
//! property test holds the two together.

use std::ops::Range;

use crate::rows::Fields;

/// What [`plain_record`] found at an offset.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// A record, and the offset the `csv` reader's position would have after reading it
    /// (after the first byte of its line break: a `\r\n`'s `\n` is skipped as a blank line
    /// when the next record is read).
    Record(usize),
    /// Nothing but line breaks left.
    End,
    /// A record the `csv` reader must read.
    Unusual,
}

/// Finds the fields of the record at `at` when it is plain (see the module's notes): each
/// field's bytes, quotes excluded, as a range of `bytes`.
pub(crate) fn plain_record(bytes: &[u8], at: usize, record: &mut Vec<Range<usize>>) -> Found {
    let n = bytes.len();
    // Blank lines between records are skipped, as the reader does.
    let Some(skip) = bytes[at.min(n)..]
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
    else {
        return Found::End;
    };
    let mut i = at + skip;
    record.clear();
    loop {
        // `i` is where a field starts.
        if bytes.get(i) == Some(&b'"') {
            let body = i + 1;
            let Some(close) = memchr::memchr(b'"', &bytes[body..]).map(|k| body + k) else {
                return Found::Unusual;
            };
            match bytes.get(close + 1) {
                Some(b',') => {
                    record.push(body..close);
                    i = close + 2;
                }
                Some(b'\r' | b'\n') => {
                    record.push(body..close);
                    return Found::Record(close + 2);
                }
                None => {
                    record.push(body..close);
                    return Found::Record(n);
                }
                // A doubled quote, or text after the closing one.
                Some(_) => return Found::Unusual,
            }
        } else {
            // A quote inside an unquoted field is text, for the reader too.
            match memchr::memchr3(b',', b'\r', b'\n', &bytes[i..]).map(|k| i + k) {
                Some(stop) => {
                    record.push(i..stop);
                    if bytes[stop] != b',' {
                        return Found::Record(stop + 1);
                    }
                    i = stop + 1;
                }
                None => {
                    record.push(i..n);
                    return Found::Record(n);
                }
            }
        }
    }
}

/// The fields of a plain record, read in place from the file's text.
pub(crate) struct PlainFields<'a> {
    /// From the first field's first byte to the last field's last: the delimiters and
    /// quotes between them are ASCII, so its UTF-8 is every field's.
    text: &'a str,
    base: usize,
    bounds: &'a [Range<usize>],
}

impl<'a> PlainFields<'a> {
    /// The fields `bounds` (from [`plain_record`]) of `bytes`, or `None` when they are
    /// not UTF-8.
    pub(crate) fn new(bytes: &'a [u8], bounds: &'a [Range<usize>]) -> Option<Self> {
        let base = bounds.first().map_or(0, |b| b.start);
        let last = bounds.last().map_or(base, |b| b.end);
        let text = std::str::from_utf8(&bytes[base..last]).ok()?;
        Some(Self { text, base, bounds })
    }
}

impl Fields for PlainFields<'_> {
    fn len(&self) -> usize {
        self.bounds.len()
    }

    fn get(&self, i: usize) -> &str {
        let b = &self.bounds[i];
        &self.text[b.start - self.base..b.end - self.base]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use csv::ByteRecord;
    use proptest::prelude::*;

    fn fields(bytes: &[u8], bounds: &[Range<usize>]) -> Vec<Vec<u8>> {
        bounds.iter().map(|b| bytes[b.clone()].to_vec()).collect()
    }

    /// What the `csv` reader, started afresh at `at`, reads there.
    fn by_reader(bytes: &[u8], at: usize) -> Option<(Vec<Vec<u8>>, usize)> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(&bytes[at..]);
        let mut record = ByteRecord::new();
        reader
            .read_byte_record(&mut record)
            .expect("byte records never fail in memory")
            .then(|| {
                let fields = record.iter().map(<[u8]>::to_vec).collect();
                (fields, at + reader.position().byte() as usize)
            })
    }

    /// Walks `text` record by record as the reader does, and checks at each record that
    /// the fast path reads what the reader reads, or leaves it to the reader.
    fn agrees(text: &str) -> Result<usize, TestCaseError> {
        let bytes = text.as_bytes();
        let mut at = 0;
        let mut plain = 0;
        let mut record = Vec::new();
        loop {
            let expected = by_reader(bytes, at);
            match (plain_record(bytes, at, &mut record), &expected) {
                (Found::Record(end), Some((fields, reader_end))) => {
                    let got = self::fields(bytes, &record);
                    prop_assert_eq!(&got, fields, "fields of the record at {} in {:?}", at, text);
                    prop_assert_eq!(
                        end,
                        *reader_end,
                        "end of the record at {} in {:?}",
                        at,
                        text
                    );
                    plain += 1;
                }
                (Found::End, None) | (Found::Unusual, Some(_)) => {}
                (found, expected) => prop_assert!(
                    false,
                    "at {at} in {text:?}: fast path {found:?}, reader {expected:?}"
                ),
            }
            match expected {
                Some((_, end)) if end > at => at = end,
                _ => return Ok(plain),
            }
        }
    }

    #[test]
    fn plain_records_are_read_as_the_reader_reads_them() {
        let text = "a,b,c\r\n\"x, y\",,\"line\nbreak\"\n\n1,2\r3,\"\"\n,\nlast";
        assert_eq!(agrees(text).unwrap(), 6);
        let mut record = Vec::new();
        assert_eq!(
            plain_record(text.as_bytes(), 0, &mut record),
            Found::Record(6)
        );
        assert_eq!(fields(text.as_bytes(), &record), [&b"a"[..], b"b", b"c"]);
        let plain = PlainFields::new(text.as_bytes(), &record).unwrap();
        assert_eq!(
            (0..3).map(|i| plain.get(i)).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
    }

    #[test]
    fn odd_quoting_is_left_to_the_reader() {
        let mut record = Vec::new();
        for text in [
            "\"say \"\"hi\"\"\",x\n",
            "\"ab\"c,d\n",
            "a,\"never closed\n",
        ] {
            assert_eq!(
                plain_record(text.as_bytes(), 0, &mut record),
                Found::Unusual,
                "{text:?}"
            );
        }
        assert_eq!(plain_record(b"\r\n\n", 0, &mut record), Found::End);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn any_text_is_read_as_the_reader_reads_it(text in "[ab,\" \r\n]{0,48}") {
            agrees(&text)?;
        }
    }
}
