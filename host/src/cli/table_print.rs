//! The first rows of a released table as the terminal shows them (`carrel study result`
//! and the demo): redacted cells empty, every line made safe for a terminal.

use carrel_warehouse::study::metadata::terminal_lines;

/// Prints the first `rows` rows of the Arrow IPC table `ipc`, and how many it holds.
pub fn print_table(ipc: &[u8], rows: usize) -> anyhow::Result<()> {
    let batches = carrel_pseudonym::from_ipc(ipc)?;
    let mut shown = Vec::new();
    let mut left = rows;
    for batch in &batches {
        if left == 0 {
            break;
        }
        let take = left.min(batch.num_rows());
        shown.push(batch.slice(0, take));
        left -= take;
    }
    let total: usize = batches.iter().map(|b| b.num_rows()).sum();
    let table = arrow_cast::pretty::pretty_format_batches(&shown)?.to_string();
    println!("{}", terminal_lines(&table));
    if total > rows {
        println!("({} of {total} rows shown; empty cells are redacted)", rows);
    } else {
        println!("(empty cells are redacted)");
    }
    Ok(())
}
