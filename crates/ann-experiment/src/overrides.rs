//! `KEY=VALUE` overrides of an experiment's TOML table (`ann train --set`, `cargo xtask reproduce --set`).
//!
//! Self-contained (toml and anyhow only): xtask compiles this same file (`#[path]`) so that its
//! dry run applies exactly the rule `ann` applies, without depending on the framework's crates.

/// Set one value of a TOML table from `KEY=VALUE`: `KEY` is dotted (`train.epochs`,
/// `model.prices.gpt-4o.input_per_mtok`), `VALUE` a TOML value (`3`, `true`, `["direct", "cot"]`,
/// `"text"`), and anything that does not parse as one is taken as a string (`model.name=gpt-4o`).
/// Missing tables on the way are created; whether the key exists is checked when the result is
/// parsed as a config (unknown keys are errors naming the key).
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> anyhow::Result<()> {
    let Some((key, value)) = assignment.split_once('=') else {
        anyhow::bail!("an override is KEY=VALUE, e.g. train.epochs=3");
    };
    let key = key.trim();
    let parts: Vec<&str> = key.split('.').map(str::trim).collect();
    if parts.iter().any(|p| p.is_empty()) {
        anyhow::bail!("`{key}` is not a dotted key such as train.epochs");
    }
    let value = value.trim();
    let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_string()));
    let (last, path) = parts.split_last().expect("at least one part");
    let mut current = table;
    for (i, part) in path.iter().enumerate() {
        let entry = current.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        current = match entry {
            toml::Value::Table(t) => t,
            _ => anyhow::bail!("`{}` is not a table", parts[..=i].join(".")),
        };
    }
    current.insert(last.to_string(), parsed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_set_dotted_keys_with_toml_values() {
        let mut table: toml::Table = toml::from_str("name = \"x\"\n[train]\nepochs = 20\n").unwrap();
        for o in ["train.epochs=2", "model.name=gpt-4o", "baselines=[\"cot\"]", "budget.max_dollars = 1.5"] {
            apply_override(&mut table, o).unwrap();
        }
        assert_eq!(table["train"]["epochs"].as_integer(), Some(2));
        assert_eq!(table["model"]["name"].as_str(), Some("gpt-4o"));
        assert_eq!(table["baselines"].as_array().unwrap().len(), 1);
        assert_eq!(table["budget"]["max_dollars"].as_float(), Some(1.5));
        assert!(apply_override(&mut table, "name.x=1").unwrap_err().to_string().contains("`name` is not a table"));
        assert!(apply_override(&mut table, "epochs").unwrap_err().to_string().contains("KEY=VALUE"));
        assert!(apply_override(&mut table, "train..x=1").is_err());
    }
}
