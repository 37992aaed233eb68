//! The refusals of declared input that do not wait for the provider: no cards declared, people
//! declared without their cards while state holds a fleet, a `--target` that matches nothing.
//! Each names what to pass to go on anyway; none sends or writes anything.

use crate::cli::CliError;

/// Declarations with nothing in them are refused unless asked for: planned against a fleet, they
/// would mark every card undeclared, and with `--prune` freeze them all. People without cards
/// (an onboarding's first step) pass here; [`check_cards_declared`] judges them against state.
pub fn check_not_empty(
    decls: &crate::decl::Declarations,
    allow_empty: bool,
) -> Result<(), CliError> {
    if !decls.cards.is_empty() || !decls.cardholders.is_empty() || allow_empty {
        return Ok(());
    }
    let files = if decls.files.is_empty() {
        "the given paths (no declaration files found)".to_owned()
    } else {
        decls.files.join(", ")
    };
    Err(CliError::refused(format!(
        "no cards are declared in {files}: refusing to go on, since every card in state would \
         count as undeclared (and --prune would freeze them all); check the -f paths, or pass \
         --allow-empty if an empty fleet is what you mean (nothing was sent to the provider)"
    )))
}

/// People declared without any card are a plan only while state holds no card: with a fleet in
/// state, they are far likelier `-f people.csv` missing its `-f cards.csv` than a wish to leave
/// every card undeclared (and with `--prune`, frozen).
pub fn check_cards_declared(
    decls: &crate::decl::Declarations,
    cards_in_state: usize,
    allow_empty: bool,
) -> Result<(), CliError> {
    if !decls.cards.is_empty() || cards_in_state == 0 || allow_empty {
        return Ok(());
    }
    Err(CliError::refused(format!(
        "only people are declared in {}, no cards, while state holds {cards_in_state} card{}: \
         refusing to go on, since every one of them would count as undeclared (and --prune would \
         freeze them all); add the card files to -f, or pass --allow-empty if that is what you \
         mean (nothing was changed at the provider)",
        decls.files.join(", "),
        if cards_in_state == 1 { "" } else { "s" }
    )))
}

/// A target that matches nothing is a typo until shown otherwise: refuse before anything is sent.
pub fn check_targets_matched(doc: &crate::plan::PlanDocument) -> Result<(), CliError> {
    match doc.plan.partial.as_ref().map(|p| p.unmatched.as_slice()) {
        Some([]) | None => Ok(()),
        Some(unmatched) => Err(CliError::Usage(format!(
            "--target {} matches no declared card and no card in state",
            unmatched.join(", --target ")
        ))),
    }
}
