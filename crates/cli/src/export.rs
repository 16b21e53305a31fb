//! `partnerloop export referrals|commissions|partners [--format csv|json]
//! [--output FILE]`: the workspace's records, streamed page by page (the
//! store's keyset pagination) to stdout or a file, so memory stays flat
//! whatever the size. CSV has a header row; JSON is one array with one
//! object per line, the same field names. A count goes to stderr.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::ValueEnum;
use partnerloop_app::export::{self, ExportError, ExportKind, Record};
use partnerloop_app::{Ctx, Store};

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Kind {
    Referrals,
    Commissions,
    Partners,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum Format {
    #[default]
    Csv,
    Json,
}

impl From<Kind> for ExportKind {
    fn from(k: Kind) -> Self {
        match k {
            Kind::Referrals => ExportKind::Referrals,
            Kind::Commissions => ExportKind::Commissions,
            Kind::Partners => ExportKind::Partners,
        }
    }
}

/// Writes records as CSV rows or JSON array elements.
enum Sink<W: Write> {
    Csv(Box<csv::Writer<W>>),
    Json { out: W, first: bool },
}

impl<W: Write> Sink<W> {
    fn new(format: Format, mut out: W, columns: &[&str]) -> std::io::Result<Self> {
        Ok(match format {
            Format::Csv => {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(columns)?;
                Sink::Csv(Box::new(w))
            }
            Format::Json => {
                out.write_all(b"[")?;
                Sink::Json { out, first: true }
            }
        })
    }

    fn write(&mut self, columns: &[&str], records: &[Record]) -> std::io::Result<()> {
        match self {
            Sink::Csv(w) => {
                for r in records {
                    w.write_record(r.iter().map(|v| v.as_deref().unwrap_or_default()))?;
                }
            }
            Sink::Json { out, first } => {
                for r in records {
                    out.write_all(if *first { b"\n{" } else { b",\n{" })?;
                    *first = false;
                    for (i, (name, value)) in columns.iter().zip(r).enumerate() {
                        if i > 0 {
                            out.write_all(b",")?;
                        }
                        serde_json::to_writer(&mut *out, name)?;
                        out.write_all(b":")?;
                        serde_json::to_writer(&mut *out, value)?;
                    }
                    out.write_all(b"}")?;
                }
            }
        }
        Ok(())
    }

    fn finish(self) -> std::io::Result<()> {
        match self {
            Sink::Csv(mut w) => w.flush(),
            Sink::Json { mut out, .. } => {
                out.write_all(b"\n]\n")?;
                out.flush()
            }
        }
    }
}

pub async fn run(store: &dyn Store, workspace: &str, kind: Kind, format: Format, output: Option<PathBuf>) -> anyhow::Result<()> {
    let ws = store.workspace_by_slug(workspace).await.map_err(|e| anyhow::anyhow!("--workspace: no workspace '{workspace}' ({e})"))?;
    let ctx = Ctx::system(ws.id, "export", jiff::Timestamp::now());
    let kind = ExportKind::from(kind);
    let columns = kind.columns();
    let out: Box<dyn Write> = match &output {
        Some(path) => Box::new(std::fs::File::create(path).with_context(|| format!("cannot write {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut sink = Sink::new(format, std::io::BufWriter::new(out), columns).context("cannot write the export")?;
    let written = export::export(store, &ctx, kind, |records| sink.write(columns, records)).await;
    let result = match written {
        Ok(n) => sink.finish().map(|()| n).map_err(anyhow::Error::from),
        Err(ExportError::App(e)) => Err(anyhow::anyhow!("{e}")),
        Err(ExportError::Write(e)) => Err(anyhow::Error::from(e)),
    };
    match result {
        Ok(n) => {
            eprintln!("exported {n} records");
            Ok(())
        }
        Err(e) => {
            // A half-written file is worse than none.
            if let Some(path) = &output {
                let _ = std::fs::remove_file(path);
            }
            Err(e.context("the export failed"))
        }
    }
}
