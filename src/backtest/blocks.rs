//! Whole lines of a reader, a block at a time.

/// Whole lines of a reader, a block at a time, in one buffer reused from
/// block to block (fresh memory is costly: the kernel zeroes every page).
pub(super) struct Blocks<R> {
    reader: R,
    buf: Vec<u8>,
    /// Bytes read into `buf`.
    filled: usize,
    /// Start of the bytes not handed out yet (a line's beginning).
    start: usize,
    eof: bool,
}

impl<R: std::io::Read> Blocks<R> {
    pub(super) fn new(reader: R, block: usize) -> Self {
        Self {
            reader,
            buf: vec![0; block.max(1)],
            filled: 0,
            start: 0,
            eof: false,
        }
    }

    /// The next run of whole lines (the last one may lack its `\n` at the
    /// end of input); `None` at the end.
    pub(super) fn next_block(&mut self) -> std::io::Result<Option<&[u8]>> {
        // The unfinished line last time goes first.
        self.buf.copy_within(self.start..self.filled, 0);
        self.filled -= self.start;
        self.start = 0;
        let mut searched = 0;
        loop {
            while !self.eof && self.filled < self.buf.len() {
                match self.reader.read(&mut self.buf[self.filled..]) {
                    Ok(0) => self.eof = true,
                    Ok(n) => self.filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            let end = match self.buf[searched..self.filled]
                .iter()
                .rposition(|&b| b == b'\n')
            {
                Some(i) => searched + i + 1,
                None if self.eof => self.filled,
                None => {
                    // One line longer than the buffer: a bigger buffer.
                    searched = self.filled;
                    self.buf.resize(self.buf.len() * 2, 0);
                    continue;
                }
            };
            if end == 0 {
                return Ok(None);
            }
            self.start = end;
            return Ok(Some(&self.buf[..end]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_whole_lines_whatever_their_size() {
        let text = "a\nbb\n\nccc\r\ndddddddddd\ne";
        for block in [1, 2, 3, 5, 8, 64] {
            let mut blocks = Blocks::new(text.as_bytes(), block);
            let mut got = Vec::new();
            while let Some(b) = blocks.next_block().unwrap() {
                assert!(b.ends_with(b"\n") || b.ends_with(b"e"), "{block}: {b:?}");
                got.extend_from_slice(b);
            }
            assert_eq!(got, text.as_bytes(), "{block}");
        }
    }
}
