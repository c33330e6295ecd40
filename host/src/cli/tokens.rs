//! `carrel tokens`: bearer tokens of ingestion clients, researchers and auditors.

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum TokensCommand {
    /// Create a token; it is printed once and stored only as a hash.
    Add {
        /// The association an ingestion token speaks for (stamped on every row it sends).
        #[arg(long)]
        association: Option<String>,
        #[arg(long, value_enum)]
        role: carrel_warehouse::tokens::Role,
        /// The holder's name, shown with the token id in the audit log, run records and
        /// pages (`Dr Alice Martin (token:ab12cd34)`); without it, the role stands for it.
        #[arg(long)]
        name: Option<String>,
    },
    /// Revoke a token by its id.
    Revoke { id: String },
    /// List tokens (ids, roles, associations; never the tokens).
    List,
}

pub fn run(state_dir: &std::path::Path, command: TokensCommand) -> anyhow::Result<ExitCode> {
    let store = carrel_warehouse::tokens::TokenStore::open(state_dir)?;
    match command {
        TokensCommand::Add {
            association,
            role,
            name,
        } => {
            let (id, token) = store.add(
                association.as_deref(),
                role,
                name.as_deref(),
                carrel_vault::cli::OPERATOR_ACTOR,
            )?;
            println!(
                "Token {id} ({}{}{}). It is shown only this once:",
                role.as_str(),
                association.map(|a| format!(" for {a}")).unwrap_or_default(),
                name.map(|n| format!(", held by {}", n.trim()))
                    .unwrap_or_default()
            );
            println!("{token}");
        }
        TokensCommand::Revoke { id } => {
            store.revoke(&id, carrel_vault::cli::OPERATOR_ACTOR)?;
            println!("Token {id} revoked.");
        }
        TokensCommand::List => {
            for t in store.list()? {
                let state = t
                    .revoked
                    .map(|r| format!("revoked {r}"))
                    .unwrap_or_else(|| "active".into());
                use carrel_warehouse::study::metadata::terminal_safe;
                println!(
                    "{}  {:<10} {:<20} created {}  {state}  {}",
                    t.id,
                    t.role.as_str(),
                    t.association.unwrap_or_else(|| "-".into()),
                    t.created,
                    terminal_safe(&t.name.unwrap_or_default())
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
