//! The sync unit's reader of the relay log: a [`BinlogSource`] over the relay's files
//! (`binlogType: local`).
//!
//! It opens the file of the start position in the relay's current sub-directory, reads that
//! file's FormatDescription (to parse its events) and goes on from the position; each ROTATE
//! it reads names the next file (at its position). At the end of the written bytes it waits,
//! looking again every [`POLL`], so a reader catches up to the relay's end and then follows
//! it (a paused relay: the reader waits). Only whole events are read; a file that becomes
//! shorter than the reader's offset (the writer cut an unfinished transaction after a crash)
//! is a retryable error: the unit starts again from its checkpoint.
//!
//! [`LocalSource::open`] refuses a start the relay does not hold (an older file, another
//! sub-directory's server): the caller then reads the upstream (`remote`), as DM falls back.
//! A reader at the end of a sub-directory the relay has left (switch-relay-master,
//! migrate-relay) or of a stopped relay ends with a [`UnitError::reopen`] error: its unit
//! starts again from its checkpoint at once, without growing the auto-resume backoff.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::Relay;
use super::files::{self, FileEvents};
use crate::binlog::Position;
use crate::worker::error::{UnitError, code};
use crate::worker::units::sync::source::{BinlogSource, BoxFuture, Next};

/// How often a reader at the end of the relay looks for more.
pub const POLL: Duration = Duration::from_millis(50);

/// Events of the relay's files from a position.
pub struct LocalSource {
    relay: Arc<Relay>,
    dir: PathBuf,
    file: String,
    events: FileEvents,
    /// A ROTATE was read whose next file is not there yet: (name, position).
    pending: Option<(String, u64)>,
}

fn read_err(what: String) -> UnitError {
    UnitError::new(code::BINLOG_READ, "internal", what).retryable(true)
}

impl LocalSource {
    /// A reader from `start` (the reader's GTID set: `gtid`), when the relay's current
    /// sub-directory holds it ([`Relay::holds`]); Err(why) otherwise.
    pub fn open(relay: Arc<Relay>, start: &Position, gtid: &str) -> Result<LocalSource, String> {
        let dir = relay.holds(start, gtid)?;
        let path = dir.join(&start.file);
        let events = FileEvents::open(&path, start.pos)
            .map_err(|e| format!("open relay file {}: {e}", path.display()))?;
        Ok(LocalSource {
            relay,
            dir,
            file: start.file.clone(),
            events,
            pending: None,
        })
    }

    fn switch(&mut self, next: &str, pos: u64) -> Result<bool, UnitError> {
        let path: PathBuf = self.dir.join(next);
        if !Path::new(&path).exists() {
            return Ok(false);
        }
        match FileEvents::open(&path, pos.max(4)) {
            Ok(ev) => {
                // From the FormatDescription at 4: the unit sees it as the remote stream
                // sends it after a ROTATE.
                let mut ev = ev;
                if pos <= 4 {
                    ev.offset = 4;
                }
                self.events = ev;
                self.file = next.to_string();
                Ok(true)
            }
            // Created, FormatDescription not written yet: look again later.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(read_err(format!("open relay file {}: {e}", path.display()))),
        }
    }
}

impl BinlogSource for LocalSource {
    fn next(&mut self, wait: Duration) -> BoxFuture<'_, Result<Next, UnitError>> {
        Box::pin(async move {
            let until = Instant::now() + wait;
            loop {
                if let Some((next, pos)) = self.pending.clone() {
                    if self.switch(&next, pos)? {
                        self.pending = None;
                        continue;
                    }
                } else {
                    let offset = self.events.offset;
                    let len = self
                        .events
                        .refresh_len()
                        .map_err(|e| read_err(format!("relay file {}: {e}", self.file)))?;
                    if len < offset {
                        return Err(read_err(format!(
                            "[code=11034] relay file {} became smaller ({len} < {offset}): the relay cut an unfinished transaction",
                            self.file
                        )));
                    }
                    match self.events.next_event() {
                        Ok(Some((bytes, ev))) => {
                            let real_rotate = files::Header::parse(&bytes).is_some_and(|h| {
                                h.type_code == files::types::ROTATE && h.log_pos != 0
                            });
                            if real_rotate
                                && let Ok(Some(
                                    mysql_async::binlog::events::EventData::RotateEvent(r),
                                )) = ev.read_data()
                            {
                                let (next, pos) = (r.name().to_string(), r.position());
                                if !self.switch(&next, pos)? {
                                    self.pending = Some((next, pos));
                                }
                            }
                            let ev = crate::binlog::compress::uncompress(ev).map_err(|e| {
                                UnitError::new(
                                    code::BINLOG_READ,
                                    "internal",
                                    "decompress a relay event",
                                )
                                .cause(e)
                            })?;
                            return Ok(Next::Event(Box::new(ev)));
                        }
                        Ok(None) => {
                            // At the end of a sub-directory the relay left (switch-relay-master):
                            // the unit starts again from its checkpoint (by GTID upstream, or in
                            // the new sub-directory once its position is there).
                            if self.relay.stage() == super::RelayStage::Stopped {
                                // stop-relay, or the relay replaced (update-relay): the unit
                                // starts again (then with the new relay, or the upstream).
                                return Err(read_err(
                                    "the relay log stopped: reading again from the checkpoint"
                                        .to_string(),
                                )
                                .reopen());
                            }
                            if self.relay.current_dir().is_some_and(|d| d != self.dir) {
                                return Err(read_err(format!(
                                    "the relay moved to a new sub-directory ({}): reading again from the checkpoint",
                                    self.relay
                                        .current_dir()
                                        .map(|d| d.display().to_string())
                                        .unwrap_or_default()
                                ))
                                .reopen());
                            }
                        }
                        Err(e) => {
                            return Err(read_err(format!(
                                "[code=11038] parse relay file {} at {offset}: {e}",
                                self.file
                            )));
                        }
                    }
                }
                let now = Instant::now();
                if now >= until {
                    return Ok(Next::Quiet);
                }
                tokio::time::sleep(POLL.min(until - now)).await;
            }
        })
    }
}
