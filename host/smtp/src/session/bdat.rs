//! BDAT (RFC 3030 CHUNKING): the message in chunks of announced size,
//! read as raw bytes (no dot-stuffing, no end marker: nothing in a chunk
//! can end it early, so there is nothing to smuggle), the last one marked
//! `LAST`. What follows the last chunk is what follows DATA's final dot:
//! the `end_of_data` list, the Received header, and `250` only once the
//! queue has the message on disk.
//!
//! A chunk is always read to its end, even when it is refused, so that the
//! byte stream stays in step with the client (RFC 3030 §2); after a
//! refused chunk the later ones of the message are read and refused too,
//! and `BDAT ... LAST` ends the transaction.

use postern_mail::{EnhancedCode, Reply};

use super::io::Stop;
use super::transaction::Chunks;
use super::{Session, Transport};

impl<S: Transport> Session<S> {
    /// Answers `BDAT size [LAST]`, reading the chunk.
    pub(super) async fn bdat(&mut self, size: u64, last: bool) -> Result<Reply, Stop> {
        let timeout = self.settings.data_timeout;
        if size == 0 && !last {
            // Nothing to read, nothing to do: Postfix's wording.
            return Ok(Reply::new(
                551,
                EnhancedCode::new(5, 7, 1),
                "Null BDAT request",
            ));
        }
        let with_recipients = self.txn.as_ref().is_some_and(|t| !t.recipients.is_empty());
        let first = self.txn.as_ref().is_none_or(|t| t.chunks.is_none());
        if first {
            // As for DATA: a transaction with recipients, and the `data`
            // list asked before the first chunk is taken in.
            if let Some(reply) = self.data_refusal("BDAT").await {
                if !with_recipients {
                    // No transaction to attach it to: drop the chunk.
                    self.io
                        .read_chunk(size, &mut Vec::new(), false, timeout)
                        .await?;
                    return Ok(reply);
                }
                if let Some(txn) = &mut self.txn {
                    txn.chunks = Some(Chunks {
                        failed: Some(reply),
                        logged: true,
                        ..Chunks::default()
                    });
                }
            }
        }
        let limit = self.settings.message_size_limit;
        let Some(chunks) = self.txn.as_mut().map(|t| t.chunks.get_or_insert_default()) else {
            // Unreachable: `data_refusal` said there is a transaction.
            return Ok(Reply::new(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: need RCPT command",
            ));
        };
        chunks.size = chunks.size.saturating_add(size);
        if chunks.failed.is_none() && chunks.size > limit {
            // The size is announced: refuse before reading, keep nothing.
            chunks.failed = Some(Reply::new(
                552,
                EnhancedCode::new(5, 3, 4),
                "Chunk exceeds message size limit",
            ));
            chunks.content = Vec::new();
        }
        let keep = chunks.failed.is_none();
        let mut content = std::mem::take(&mut chunks.content);
        self.io
            .read_chunk(size, &mut content, keep, timeout)
            .await?;
        let Some(chunks) = self.txn.as_mut().and_then(|t| t.chunks.as_mut()) else {
            // Unreachable: reading the chunk does not end the transaction.
            return Ok(Reply::new(
                503,
                EnhancedCode::new(5, 5, 1),
                "Error: need RCPT command",
            ));
        };
        chunks.content = content;
        if !last {
            return Ok(match &chunks.failed {
                Some(reply) => reply.clone(),
                None => Reply::new(250, EnhancedCode::new(2, 0, 0), format!("Ok: {size} bytes")),
            });
        }
        let body = match chunks.failed.take() {
            Some(reply) if chunks.logged => {
                self.end_transaction();
                return Ok(reply);
            }
            Some(reply) => Err(reply),
            None => Ok(std::mem::take(&mut chunks.content)),
        };
        let reply = self.end_of_data(body).await;
        self.end_transaction();
        Ok(reply)
    }
}
