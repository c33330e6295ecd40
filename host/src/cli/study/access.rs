//! Who a `carrel study` command acts as, and `carrel study owners`.
//!
//! - A researcher is named by token id (`--by ID`): the command runs at the warehouse's
//!   terminal, so the operator vouches for them. Without `--by`, the operator acts.
//! - An auditor proves themself with their secret token (`--token SECRET`, or
//!   `CARREL_TOKEN`): an approval or revocation without it is recorded as the operator's.

use anyhow::{Context, bail};
use carrel_warehouse::study::owners::{Caller, Owner};
use carrel_warehouse::study::registry::StudyRegistry;
use carrel_warehouse::tokens::{Refusal, Role, TokenError, TokenStore};
use clap::Subcommand;
use std::path::Path;

#[derive(Subcommand)]
pub enum OwnersCommand {
    /// The owners of a study.
    List {
        study: String,
        /// The owner's researcher token id (default: the operator at this terminal).
        #[arg(long)]
        by: Option<String>,
    },
    /// Make another researcher's token an owner: they may then submit, run and read its
    /// runs.
    Add {
        study: String,
        /// The new owner's researcher token id.
        token_id: String,
        /// An owner's researcher token id (default: the operator at this terminal).
        #[arg(long)]
        by: Option<String>,
    },
    /// Remove an owner; a study keeps at least one.
    Remove {
        study: String,
        token_id: String,
        /// An owner's researcher token id (default: the operator at this terminal).
        #[arg(long)]
        by: Option<String>,
    },
}

/// `--by ID`: the researcher holding that active token; the operator without it.
pub(super) fn researcher(state_dir: &Path, by: Option<&str>) -> anyhow::Result<Caller> {
    let Some(id) = by else {
        return Ok(Caller::Operator);
    };
    let token = match TokenStore::open(state_dir)?.get(id) {
        Err(TokenError::UnknownId(_)) => {
            bail!("no token with id `{id}` (see `carrel tokens list`)")
        }
        other => other?,
    };
    if token.revoked.is_some() {
        bail!("token `{id}` is revoked");
    }
    if token.role != Role::Researcher {
        bail!(
            "token `{id}` has role {}, not researcher",
            token.role.as_str()
        );
    }
    Ok(Caller::Holder(token.principal()))
}

/// `--token SECRET`: the auditor it proves; the operator without it.
pub(super) fn auditor(state_dir: &Path, token: Option<&str>) -> anyhow::Result<Caller> {
    let Some(secret) = token.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(Caller::Operator);
    };
    match TokenStore::open(state_dir)?.authenticate(secret)? {
        Err(Refusal::Unknown) => bail!("the token given with --token (or CARREL_TOKEN) is unknown"),
        Err(Refusal::Revoked(who)) => bail!(
            "the token given with --token (or CARREL_TOKEN), token {}, is revoked",
            who.token_id
        ),
        Ok(p) if p.role != Role::Auditor => bail!(
            "the token given with --token (or CARREL_TOKEN) is a {} token: only an auditor approves or revokes",
            p.role.as_str()
        ),
        Ok(p) => Ok(Caller::Holder(p)),
    }
}

/// What an approval or revocation says of who made it.
pub(super) fn recorded_as(who: &Caller) -> String {
    match who {
        Caller::Operator => format!(
            "Recorded as the operator's (`{}`): no auditor's token was given (--token or CARREL_TOKEN).",
            who.actor()
        ),
        Caller::Holder(_) => format!("Recorded as {}'s.", who.actor()),
    }
}

fn print_owners(study: &str, owners: &[Owner]) {
    if owners.is_empty() {
        println!(
            "{study} has no owner: the operator adds one with `carrel study owners add {study} <token id>`."
        );
    }
    for o in owners {
        println!(
            "{}  added {} by {}",
            carrel_warehouse::study::metadata::terminal_safe(&o.holder),
            o.added_at,
            carrel_warehouse::study::metadata::terminal_safe(&o.added_by)
        );
    }
}

/// `carrel study owners …`: needs the catalog only, not the master key.
pub(super) fn owners(state_dir: &Path, command: OwnersCommand) -> anyhow::Result<()> {
    let registry = StudyRegistry::open(state_dir)?;
    match command {
        OwnersCommand::List { study, by } => {
            let who = researcher(state_dir, by.as_deref())?;
            registry.check_owner(&study, &who, "list owners")?;
            print_owners(&study, &registry.owners(&study)?);
        }
        OwnersCommand::Add {
            study,
            token_id,
            by,
        } => {
            let who = researcher(state_dir, by.as_deref())?;
            // A non-owner learns nothing, not even whether the token exists.
            registry.check_owner(&study, &who, "add an owner")?;
            let new = TokenStore::open(state_dir)?
                .get(&token_id)
                .with_context(|| format!("cannot add an owner to {study}"))?;
            print_owners(&study, &registry.add_owner(&study, &new, &who)?);
        }
        OwnersCommand::Remove {
            study,
            token_id,
            by,
        } => {
            let who = researcher(state_dir, by.as_deref())?;
            print_owners(&study, &registry.remove_owner(&study, &token_id, &who)?);
        }
    }
    Ok(())
}
