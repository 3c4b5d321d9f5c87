//! One Verilog module per distinct sub-block instead of one per instance.
//!
//! rust-hdl writes a module for every instance, named by its path (`card$lanes$0$engines$0`,
//! `card$lanes$0$engines$1`, …), so a card of K engines holds K copies of the engine's text.
//! Simulators and synthesis then compile and optimise each copy: a flat netlist took Yosys
//! about 25 minutes per engine here, so a card of 24 engines was out of reach. Modules
//! whose text is the same — once their own name is set aside and each of their instances names
//! the shared module it now refers to — are one module: the first of them is kept, under its
//! name, and every instance of the others is pointed at it.

use std::collections::BTreeMap;

/// `verilog` (rust-hdl's output, top module `top`) with identical modules written once.
///
/// Modules are compared bottom-up: two parents are identical when their texts are, with each
/// child instance's module replaced by the one kept for it. Instance names, ports and signals
/// are untouched, so hierarchical names (`card.lanes$1.engines$3…`) stay what they were.
pub fn share_identical_modules(verilog: &str, top: &str) -> String {
    let file = Parsed::new(verilog, top);
    let mut kept: BTreeMap<String, &str> = BTreeMap::new();
    let mut canonical: BTreeMap<&str, &str> = BTreeMap::new();
    for index in 0..file.modules.len() {
        file.canonical(index, &mut kept, &mut canonical);
    }
    let mut out = String::with_capacity(verilog.len());
    for piece in &file.pieces {
        match piece {
            Piece::Text(line) => {
                out.push_str(line);
                out.push('\n');
            }
            Piece::Module(index) => {
                let module = &file.modules[*index];
                if canonical[module.name] != module.name {
                    continue;
                }
                for line in &module.lines {
                    match instance_of(line, top) {
                        Some((lead, child, rest)) => {
                            out.push_str(lead);
                            out.push_str(canonical[child]);
                            out.push_str(rest);
                        }
                        None => out.push_str(line),
                    }
                    out.push('\n');
                }
            }
        }
    }
    out
}

/// The file cut into modules and the text between them.
struct Parsed<'a> {
    pieces: Vec<Piece<'a>>,
    modules: Vec<Module<'a>>,
    by_name: BTreeMap<&'a str, usize>,
    top: &'a str,
}

enum Piece<'a> {
    Text(&'a str),
    Module(usize),
}

struct Module<'a> {
    name: &'a str,
    /// Every line from `module NAME(` to `endmodule`, both included.
    lines: Vec<&'a str>,
}

impl<'a> Parsed<'a> {
    fn new(verilog: &'a str, top: &'a str) -> Self {
        let mut pieces = Vec::new();
        let mut modules: Vec<Module<'a>> = Vec::new();
        let mut by_name = BTreeMap::new();
        let mut open: Option<Module<'a>> = None;
        for line in verilog.lines() {
            if let Some(module) = open.as_mut() {
                module.lines.push(line);
                if line.starts_with("endmodule") {
                    let module = open.take().expect("an open module");
                    by_name.insert(module.name, modules.len());
                    pieces.push(Piece::Module(modules.len()));
                    modules.push(module);
                }
            } else if let Some(name) = declared(line) {
                open = Some(Module {
                    name,
                    lines: vec![line],
                });
            } else {
                pieces.push(Piece::Text(line));
            }
        }
        // A module left open (no `endmodule`) is kept as text: the tools will report it.
        if let Some(module) = open {
            pieces.extend(module.lines.into_iter().map(Piece::Text));
        }
        Self {
            pieces,
            modules,
            by_name,
            top,
        }
    }

    /// The name kept for module `index`, deciding it (and its children's) on first use.
    fn canonical(
        &self,
        index: usize,
        kept: &mut BTreeMap<String, &'a str>,
        canonical: &mut BTreeMap<&'a str, &'a str>,
    ) -> &'a str {
        let module = &self.modules[index];
        if let Some(&name) = canonical.get(module.name) {
            return name;
        }
        // The key: the text without the declaration's name and the closing comment (which
        // holds the name too), with every instance naming its child's kept module.
        let mut key = String::new();
        let body = &module.lines[..module.lines.len() - 1];
        for (number, line) in body.iter().enumerate() {
            if number == 0 {
                key.push_str(&line["module ".len() + module.name.len()..]);
            } else if let Some((lead, child, rest)) = instance_of(line, self.top) {
                let child = match self.by_name.get(child) {
                    Some(&child) => self.canonical(child, kept, canonical),
                    // An instance of a module the file does not define (a primitive) keeps its
                    // name.
                    None => child,
                };
                key.push_str(lead);
                key.push_str(child);
                key.push_str(rest);
            } else {
                key.push_str(line);
            }
            key.push('\n');
        }
        let name = *kept.entry(key).or_insert(module.name);
        canonical.insert(module.name, name);
        name
    }
}

/// The name a `module NAME(…` line declares.
fn declared(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("module ")?;
    let end = rest.find(['(', ';', ' '])?;
    Some(&rest[..end])
}

/// An instance line `    top$child instance(` cut into its indentation, the child's module and
/// the rest of the line.
fn instance_of<'l>(line: &'l str, top: &str) -> Option<(&'l str, &'l str, &'l str)> {
    let indent = line.len() - line.trim_start().len();
    let (lead, rest) = line.split_at(indent);
    if indent == 0 || !rest.starts_with(top) || !rest[top.len()..].starts_with('$') {
        return None;
    }
    let end = rest.find(' ')?;
    let (child, tail) = rest.split_at(end);
    // `child instance(`: the instance's name runs up to its port list.
    let instance = &tail[1..tail.find('(')?];
    let is_name = !instance.is_empty()
        && instance
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    is_name.then_some((lead, child, tail))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LEAF_A: &str = "module top$a$x(d,q);\n    input wire d;\n    output wire q;\n    assign q = d;\nendmodule // top$a$x\n";

    fn parent(name: &str, child: &str, constant: u8) -> String {
        format!(
            "module {name}(d,q);\n    input wire d;\n    output wire q;\n    localparam k = {constant};\n    {child} x(\n        .d(d),\n        .q(q)\n    );\nendmodule // {name}\n"
        )
    }

    fn leaf(name: &str, op: &str) -> String {
        format!("module {name}(d,q);\n    input wire d;\n    output wire q;\n    assign q = {op}d;\nendmodule // {name}\n")
    }

    fn modules(verilog: &str) -> Vec<&str> {
        verilog.lines().filter_map(declared).collect()
    }

    #[test]
    fn identical_subtrees_are_written_once_and_instances_point_at_the_kept_one() {
        let verilog = [
            "module top(d,q);\n    input wire d;\n    output wire q;\n    wire m;\n    top$a a(\n        .d(d),\n        .q(m)\n    );\n    top$b b(\n        .d(m),\n        .q(q)\n    );\nendmodule // top\n".to_owned(),
            parent("top$a", "top$a$x", 1),
            LEAF_A.to_owned(),
            parent("top$b", "top$b$x", 1),
            leaf("top$b$x", ""),
        ]
        .join("\n");
        let shared = share_identical_modules(&verilog, "top");
        assert_eq!(modules(&shared), ["top", "top$a", "top$a$x"], "{shared}");
        assert!(shared.contains("    top$a b(\n"), "{shared}");
        assert!(shared.contains("    top$a a(\n"), "{shared}");
        assert!(!shared.contains("top$b"), "{shared}");
    }

    #[test]
    fn a_different_constant_or_a_different_child_keeps_a_module_of_its_own() {
        let verilog = [
            parent("top$a", "top$a$x", 1),
            LEAF_A.to_owned(),
            // Same text as top$a but a constant apart.
            parent("top$b", "top$b$x", 2),
            leaf("top$b$x", ""),
            // Same text as top$a, but its child differs.
            parent("top$c", "top$c$x", 1),
            leaf("top$c$x", "~"),
        ]
        .join("\n");
        let shared = share_identical_modules(&verilog, "top");
        assert_eq!(
            modules(&shared),
            ["top$a", "top$a$x", "top$b", "top$c", "top$c$x"],
            "{shared}"
        );
        assert!(
            shared.contains("module top$b(d,q);\n    input wire d;\n    output wire q;\n    localparam k = 2;\n    top$a$x x("),
            "{shared}"
        );
        assert!(shared.contains("    top$c$x x("), "{shared}");
    }

    #[test]
    fn a_file_with_nothing_to_share_comes_back_as_it_was() {
        let verilog = [parent("top$a", "top$a$x", 1), LEAF_A.to_owned()].join("\n");
        assert_eq!(share_identical_modules(&verilog, "top"), verilog);
    }
}
