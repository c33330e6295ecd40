//! Released study tables in the formats researchers download.

use anyhow::Context;

/// CSV with a header row; a redacted cell is an empty field.
pub fn to_csv(ipc: &[u8]) -> anyhow::Result<Vec<u8>> {
    let batches = carrel_pseudonym::from_ipc(ipc).context("the stored result is not Arrow IPC")?;
    let mut out = Vec::new();
    {
        let mut writer = arrow_csv::WriterBuilder::new()
            .with_header(true)
            .build(&mut out);
        for batch in &batches {
            writer.write(batch)?;
        }
    }
    Ok(out)
}
