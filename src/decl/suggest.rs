//! "Did you mean …?" for misspelt field names, columns and status values. Pure string work;
//! must not know which names are valid (the caller passes the candidates).

/// Edit distance (insert, delete, substitute, and swap of two neighbours) between two strings,
/// counted in characters.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows are enough for the transposition rule (optimal string alignment).
    let mut prev2 = vec![0usize; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

/// The candidate closest to `input`, if it is close enough to be a plausible typo.
pub(crate) fn did_you_mean<'a>(input: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lowered = input.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for &c in candidates {
        // A case-only difference is the likeliest typo of all.
        let candidate = c.to_lowercase();
        let d = if lowered == candidate {
            0
        } else {
            distance(&lowered, &candidate)
        };
        if best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    let (d, c) = best?;
    // About one edit per three characters: `prodcut_code` matches, `colour` does not match `key`.
    let limit = (input.chars().count().max(c.chars().count()) / 3).max(1);
    (d <= limit).then_some(c)
}

/// The help line for an unknown name: a suggestion when there is one, else the list of what is
/// allowed.
pub(crate) fn help_for(input: &str, candidates: &[&str], what: &str) -> String {
    match did_you_mean(input, candidates) {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!(
            "{what} are: {}",
            candidates
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: &[&str] = &[
        "key",
        "external_user_id",
        "product_code",
        "initial_topup",
        "status",
        "labels",
    ];

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("", ""), 0);
        assert_eq!(distance("abc", "abc"), 0);
        assert_eq!(distance("abc", "abd"), 1);
        assert_eq!(distance("abc", "ab"), 1);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggests_close_names() {
        assert_eq!(did_you_mean("prodcut_code", FIELDS), Some("product_code"));
        assert_eq!(did_you_mean("lables", FIELDS), Some("labels"));
        assert_eq!(did_you_mean("Status", FIELDS), Some("status"));
        assert_eq!(
            did_you_mean("initial_top_up", FIELDS),
            Some("initial_topup")
        );
        assert_eq!(did_you_mean("frozn", &["active", "frozen"]), Some("frozen"));
    }

    #[test]
    fn does_not_suggest_unrelated_names() {
        assert_eq!(did_you_mean("colour", FIELDS), None);
        assert_eq!(did_you_mean("x", &["key"]), None);
        assert_eq!(did_you_mean("deleted", &["active", "frozen"]), None);
    }

    #[test]
    fn help_lists_candidates_when_nothing_is_close() {
        assert_eq!(
            help_for("zzz", &["active", "frozen"], "allowed values"),
            "allowed values are: `active`, `frozen`"
        );
        assert_eq!(
            help_for("activ", &["active", "frozen"], "allowed values"),
            "did you mean `active`?"
        );
    }
}
