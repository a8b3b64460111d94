//! What a chat template may turn into text or walk in one step. minijinja keeps `[x] * n` and
//! `a + b` of sequences lazy, so `333**6 * ['role']` is a sequence of 10^15 items in a few bytes.
//! Printing it, or a filter that walks it (`join`, `tojson`, `sort`, ...), runs inside one VM
//! instruction, which fuel does not see, and minijinja keeps walking even after the output refused
//! more text: the render never ends (found by the `template_render` fuzz target). So values are
//! measured before they are printed or handed to such a filter, and refused past `MAX_ITEMS` items in
//! all, nested ones included. Measuring stops at the limit, so it costs no more than the walk.
//!
//! Left unguarded: `~`, `in` and comparisons on such a sequence, which minijinja evaluates itself.

use minijinja::value::{Rest, Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, Output, State};

/// Items, nested ones included, that one printed value or one filter's input may hold.
const MAX_ITEMS: usize = 1_000_000;

/// Makes `env` measure what it prints and what its walking filters are given.
pub fn install(env: &mut Environment) {
    env.set_formatter(|out: &mut Output, state: &State, value: &Value| {
        measure(value)?;
        minijinja::escape_formatter(out, state, &tame(value))
    });
    use minijinja::filters as f;
    macro_rules! guard {
        ($($name:literal => $builtin:path),* $(,)?) => {$(
            let builtin = Value::from_function($builtin);
            env.add_filter($name, move |state: &State, args: Rest<Value>| -> Result<Value, Error> {
                args.iter().try_for_each(measure)?;
                let args: Vec<Value> = args.iter().map(tame).collect();
                builtin.call(state, &args)
            });
        )*};
    }
    // Every builtin filter that walks a sequence or turns a value into text.
    guard! {
        "safe" => f::safe, "escape" => f::escape, "e" => f::escape, "string" => f::string,
        "join" => f::join, "tojson" => f::tojson, "pprint" => f::pprint, "list" => f::list,
        "lower" => f::lower, "upper" => f::upper, "title" => f::title, "capitalize" => f::capitalize,
        "trim" => f::trim, "replace" => f::replace, "indent" => f::indent, "format" => f::format,
        "split" => f::split, "lines" => f::lines,
        "sort" => f::sort, "unique" => f::unique, "reverse" => f::reverse, "sum" => f::sum,
        "first" => f::first, "last" => f::last, "min" => f::min, "max" => f::max,
        "items" => f::items, "dictsort" => f::dictsort, "batch" => f::batch, "slice" => f::slice,
        "map" => f::map, "select" => f::select, "reject" => f::reject,
        "selectattr" => f::selectattr, "rejectattr" => f::rejectattr, "groupby" => f::groupby,
        "chain" => f::chain, "zip" => f::zip,
    }
}

/// Refuses a value of more than `MAX_ITEMS` items, counting nested sequences and maps.
fn measure(value: &Value) -> Result<(), Error> {
    let mut left = MAX_ITEMS;
    count(value, &mut left, 0)
}

/// An empty sequence repeated lazily (`10**17 * []`) says it has no items, yet walking it steps
/// through every empty repeat inside one call (found by the `template_render` fuzz target): it is
/// printed or handed to a filter as the empty list it stands for.
fn is_empty_lazy(value: &Value) -> bool {
    value.kind() == ValueKind::Iterable && value.len() == Some(0)
}

fn tame(value: &Value) -> Value {
    if is_empty_lazy(value) {
        Value::from(Vec::<Value>::new())
    } else {
        value.clone()
    }
}

fn count(value: &Value, left: &mut usize, depth: usize) -> Result<(), Error> {
    if !matches!(value.kind(), ValueKind::Seq | ValueKind::Map | ValueKind::Iterable) {
        return Ok(());
    }
    if is_empty_lazy(value) {
        // Replaced by an empty list at the top (`tame`); inside another value it would be walked.
        return match depth {
            0 => Ok(()),
            _ => Err(Error::new(
                ErrorKind::InvalidOperation,
                "a lazily repeated empty sequence cannot be printed or walked",
            )),
        };
    }
    // Without a length minijinja prints an iterable without walking it, and a filter's own
    // walk then costs fuel-free time only as long as the iterable is real data.
    let Some(len) = value.len() else { return Ok(()) };
    if len > *left {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("a value of more than {MAX_ITEMS} items is too large to print or walk"),
        ));
    }
    *left -= len;
    let is_map = value.kind() == ValueKind::Map;
    for item in value.try_iter()? {
        if is_map {
            count(&value.get_item(&item)?, left, depth + 1)?;
        }
        count(&item, left, depth + 1)?;
    }
    Ok(())
}
