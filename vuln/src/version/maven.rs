//! Maven version order, after Maven's `ComparableVersion`: items split on `.`, `-` and
//! digit/letter transitions; `-` and transitions open a nested list; known qualifiers order
//! `alpha < beta < milestone < rc = cr < snapshot < (release) = ga = final < sp`, unknown
//! ones after `sp` alphabetically; trailing zeros and release qualifiers do not count.

use std::cmp::Ordering;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Int(Vec<u8>),
    Str(String),
    List(Vec<Item>),
}

/// A parsed Maven version (every string parses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MavenVersion(Vec<Item>);

const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE: usize = 5;

fn qualifier_rank(q: &str) -> (usize, &str) {
    let q = match q {
        "ga" | "final" | "release" => "",
        "cr" => "rc",
        other => other,
    };
    match QUALIFIERS.iter().position(|x| *x == q) {
        Some(i) => (i, ""),
        None => (QUALIFIERS.len(), q),
    }
}

fn int_item(digits: &str) -> Item {
    let t = digits.trim_start_matches('0');
    Item::Int(t.as_bytes().to_vec())
}

fn str_item(s: &str, followed_by_digit: bool) -> Item {
    let s = if followed_by_digit && s.len() == 1 {
        match s {
            "a" => "alpha",
            "b" => "beta",
            "m" => "milestone",
            other => other,
        }
    } else {
        s
    };
    Item::Str(s.to_string())
}

fn is_null(item: &Item) -> bool {
    match item {
        Item::Int(d) => d.is_empty(),
        Item::Str(s) => qualifier_rank(s).0 == RELEASE,
        Item::List(l) => l.is_empty(),
    }
}

/// Drops null items at the end and those just before trailing lists, as Maven does.
fn normalize(list: &mut Vec<Item>) {
    let mut i = list.len();
    while i > 0 {
        i -= 1;
        if is_null(&list[i]) {
            list.remove(i);
        } else if !matches!(list[i], Item::List(_)) {
            break;
        }
    }
}

impl MavenVersion {
    /// Parses any string (Maven accepts every version).
    pub fn parse(s: &str) -> MavenVersion {
        let s = s.to_ascii_lowercase();
        // Stack of lists: the last is the one being filled.
        let mut stack: Vec<Vec<Item>> = vec![Vec::new()];
        let b = s.as_bytes();
        let mut start = 0;
        let mut digit = false;
        let push = |stack: &mut Vec<Vec<Item>>, item: Item| stack.last_mut().expect("root").push(item);
        let mut i = 0;
        while i < b.len() {
            let c = b[i];
            // A qualifier after a dot counts as after a hyphen (`1.0.RELEASE` is `1.0-RELEASE`).
            let c = if c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_alphabetic) { b'-' } else { c };
            if c == b'.' || c == b'-' {
                if i == start {
                    push(&mut stack, Item::Int(Vec::new()));
                } else if digit {
                    push(&mut stack, int_item(&s[start..i]));
                } else {
                    push(&mut stack, str_item(&s[start..i], false));
                }
                start = i + 1;
                if c == b'-' {
                    stack.push(Vec::new());
                }
            } else if c.is_ascii_digit() {
                if !digit && i > start {
                    push(&mut stack, str_item(&s[start..i], true));
                    start = i;
                    stack.push(Vec::new());
                }
                digit = true;
            } else {
                if digit && i > start {
                    push(&mut stack, int_item(&s[start..i]));
                    start = i;
                    stack.push(Vec::new());
                }
                digit = false;
            }
            i += 1;
        }
        if b.len() > start {
            let item = if digit { int_item(&s[start..]) } else { str_item(&s[start..], false) };
            push(&mut stack, item);
        }
        // Close nested lists from the innermost out, normalising each.
        while stack.len() > 1 {
            let mut inner = stack.pop().expect("len > 1");
            normalize(&mut inner);
            stack.last_mut().expect("len > 0").push(Item::List(inner));
        }
        let mut root = stack.pop().expect("root");
        normalize(&mut root);
        MavenVersion(root)
    }
}

/// Compares an item with a missing one (the shorter version's end).
fn cmp_null(a: &Item) -> Ordering {
    match a {
        Item::Int(d) => {
            if d.is_empty() {
                Ordering::Equal
            } else {
                Ordering::Greater
            }
        }
        Item::Str(s) => qualifier_rank(s).cmp(&(RELEASE, "")),
        Item::List(l) => l.first().map_or(Ordering::Equal, cmp_null),
    }
}

fn cmp_item(a: &Item, b: &Item) -> Ordering {
    match (a, b) {
        (Item::Int(x), Item::Int(y)) => x.len().cmp(&y.len()).then_with(|| x.cmp(y)),
        (Item::Int(_), _) => Ordering::Greater,
        (Item::Str(_), Item::Int(_)) => Ordering::Less,
        (Item::Str(x), Item::Str(y)) => qualifier_rank(x).cmp(&qualifier_rank(y)),
        (Item::Str(_), Item::List(_)) => Ordering::Less,
        (Item::List(_), Item::Int(_)) => Ordering::Less,
        (Item::List(_), Item::Str(_)) => Ordering::Greater,
        (Item::List(x), Item::List(y)) => cmp_list(x, y),
    }
}

fn cmp_list(a: &[Item], b: &[Item]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let ord = match (a.get(i), b.get(i)) {
            (Some(x), Some(y)) => cmp_item(x, y),
            (Some(x), None) => cmp_null(x),
            (None, Some(y)) => cmp_null(y).reverse(),
            (None, None) => Ordering::Equal,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    Ordering::Equal
}

impl Ord for MavenVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_list(&self.0, &other.0)
    }
}

impl PartialOrd for MavenVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
