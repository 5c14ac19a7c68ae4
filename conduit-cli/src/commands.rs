//! The command line, built from the generated table: `conduit <group>
//! <action>` for every action, each parameter with its help; and what one
//! parse of it asks for ([`Invocation`]).

use std::io::Read;
use std::path::PathBuf;

use clap::builder::PossibleValuesParser;
use clap::builder::StyledStr;
use clap::{Arg, ArgAction, ArgMatches, Args as _, Command, value_parser};
use serde_json::{Map, Value};

use crate::action::{Action, Args, Group, Kind, Param};
use crate::generated::GROUPS;
use crate::globals::Globals;
use crate::items::parse_item;

const AFTER_HELP: &str = "\
Environment:
  CONDUIT_API_TOKEN  the API token (required)

Output: an object's data as JSON; a list one item per line (JSON Lines).

Exit status: 0 success, 1 a custom tool ran and failed, 2 usage or
configuration error (nothing sent), 3 error response from the API, 4
connection failure or timeout; --batch: 130, 143, 129 stopped by SIGINT,
SIGTERM, SIGHUP, else the worst outcome of its items.";

/// The group that `tools` also names, and its batch alias.
const TOOLS: (&str, &str) = ("custom-tools", "tools");
const RUN_BATCH: &str = "run-batch";

/// The usage line of the deepest group or action `args` names, for a usage
/// error clap printed without one: `conduit tickets list --status shut`
/// shows how to call `tickets list`, not the whole tool.
pub fn usage_of(command: &mut Command, args: impl IntoIterator<Item = String>) -> StyledStr {
    command.build();
    let mut current = &*command;
    for arg in args.into_iter().skip(1) {
        if arg == "--" {
            break;
        }
        if let Some(sub) = current.find_subcommand(&arg) {
            current = sub;
        }
    }
    // Rendering needs `&mut`; this is the error path, so a copy will do.
    current.clone().render_usage()
}

/// The whole command line.
pub fn command() -> Command {
    let mut cli = Globals::augment_args(Command::new("conduit"))
        .about(
            "The Conduit API from the command line: every operation as `conduit <group> <action>`.",
        )
        .version(env!("CARGO_PKG_VERSION"))
        .after_help(AFTER_HELP)
        .subcommand_required(true)
        .subcommand_value_name("GROUP")
        .subcommand_help_heading("Groups");
    for group in GROUPS {
        cli = cli.subcommand(group_command(group));
    }
    cli.subcommand(
        Command::new("completions")
            .about("Prints shell completions: conduit completions bash > /etc/bash_completion.d/conduit")
            .arg(
                Arg::new("shell")
                    .required(true)
                    .value_parser(value_parser!(clap_complete::Shell)),
            ),
    )
}

fn group_command(group: &'static Group) -> Command {
    let mut command = Command::new(group.name)
        .about(group.about)
        .subcommand_required(true)
        .subcommand_value_name("ACTION")
        .subcommand_help_heading("Actions");
    if group.name == TOOLS.0 {
        command = command.alias(TOOLS.1);
    }
    for action in group.actions {
        command = command.subcommand(action_command(action));
        if group.name == TOOLS.0 && action.items_are_parameters {
            command = command.subcommand(run_batch_command(action));
        }
    }
    command
}

/// `<action> PATH... [--query VALUE]... [ITEM]... [--body FILE]`.
fn action_command(action: &'static Action) -> Command {
    let mut long_about = format!("{}.", action.summary);
    if !action.description.is_empty() && action.description != action.summary {
        long_about.push_str(&format!("\n\n{}", action.description.trim()));
    }
    long_about.push_str(&format!("\n\n{}", action.request));
    let mut command = Command::new(action.name)
        .about(action.summary)
        .long_about(long_about)
        .next_help_heading("Parameters");
    for p in action.path {
        command = command.arg(
            Arg::new(p.name)
                .value_name(path_value_name(p.name))
                .required_unless_present("batch")
                .help(param_help(p)),
        );
    }
    for p in action.query {
        command = command.arg(query_arg(p));
    }
    if let Some(fields) = action.body {
        command = command.after_long_help(body_help(action, fields));
        if fields.iter().any(|f| f.name == "workspace_id") {
            command = command.arg(
                Arg::new("workspace_id")
                    .long("workspace-id")
                    .value_name("ID")
                    .help("Body field workspace_id: overrides --workspace"),
            );
        }
        let what = if action.items_are_parameters {
            "The tool's parameters"
        } else {
            "Body fields"
        };
        command = command
            .arg(
                Arg::new("items")
                    .value_name("ITEM")
                    .num_args(0..)
                    .value_parser(parse_item)
                    .help(format!(
                        "{what}: KEY=VALUE (a string) or KEY:=JSON (a raw JSON value); \
                         see --help"
                    )),
            )
            .arg(
                Arg::new("body")
                    .long("body")
                    .value_name("FILE")
                    .value_parser(value_parser!(PathBuf))
                    .help("The whole JSON body from FILE, or - for stdin; ITEMs go over it"),
            );
    }
    command = command.next_help_heading("Output");
    if action.list {
        command = command
            .arg(
                Arg::new("all")
                    .long("all")
                    .action(ArgAction::SetTrue)
                    .help("Every page: follow cursors until no more"),
            )
            .arg(
                Arg::new("max_items")
                    .long("max-items")
                    .value_name("N")
                    .value_parser(value_parser!(u64).range(1..))
                    .help("Stop after N items"),
            );
    }
    command
        .next_help_heading("Batch")
        .arg(
            Arg::new("batch")
                .long("batch")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help(
                    "One call per line of JSON Lines from FILE (- for stdin), each line \
                     its arguments by name; one {\"index\", \"data\"|\"error\"} line each, in order",
                ),
        )
        .arg(concurrency_arg())
}

/// `tools run-batch TOOL_ID`: `run --batch`, each line the tool's
/// parameters.
fn run_batch_command(run: &'static Action) -> Command {
    let tool = &run.path[0];
    Command::new(RUN_BATCH)
        .about("Runs a tool once per line of JSON Lines input, each line its parameters")
        .arg(
            Arg::new(tool.name)
                .value_name(path_value_name(tool.name))
                .required(true)
                .help(param_help(tool)),
        )
        .arg(
            Arg::new("workspace_id")
                .long("workspace-id")
                .value_name("ID")
                .help("Workspace to run in: overrides --workspace"),
        )
        .arg(concurrency_arg())
        .arg(
            Arg::new("input")
                .long("input")
                .value_name("FILE")
                .value_parser(value_parser!(PathBuf))
                .help("JSON Lines input, one parameters object per line [default: stdin]"),
        )
}

fn concurrency_arg() -> Arg {
    Arg::new("concurrency")
        .long("concurrency")
        .value_name("N")
        .default_value("4")
        .value_parser(value_parser!(u16).range(1..))
        .help("--batch: calls in flight at once, sharing one client")
}

fn query_arg(p: &'static Param) -> Arg {
    let mut arg = Arg::new(format!("query.{}", p.name))
        .long(p.name.replace('_', "-"))
        .value_name(match p.kind {
            Kind::Integer => "N",
            _ if !p.values.is_empty() => "VALUE",
            _ => "TEXT",
        })
        .help(param_help(p));
    if !p.values.is_empty() {
        // Refused before anything is sent, the values named.
        arg = arg
            .value_parser(PossibleValuesParser::new(p.values.iter().copied()))
            .hide_possible_values(true);
    }
    arg
}

/// `TICKET_ID` for a path parameter `id`: the parameter upper case.
fn path_value_name(name: &str) -> String {
    name.to_ascii_uppercase()
}

fn param_help(p: &Param) -> String {
    let shape = p.shape();
    if p.description.is_empty() {
        format!("[{shape}]")
    } else {
        format!("{} [{shape}]", p.description.trim_end_matches('.'))
    }
}

fn body_help(action: &Action, fields: &[Param]) -> String {
    let mut text = String::from(
        "Body fields (ITEMs: KEY=VALUE sends a string, KEY:=JSON a raw JSON value):\n",
    );
    if action.items_are_parameters {
        text = String::from(
            "ITEMs are the tool's parameters: KEY=VALUE sends a string, KEY:=JSON a raw JSON \
             value.\n\nBody fields (--body, or a --batch line):\n",
        );
    }
    let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in fields {
        text.push_str(&format!("  {:width$}  {}\n", f.name, param_help(f)));
    }
    text
}

/// What one parse of the command line asks for.
pub enum Invocation {
    /// `completions SHELL`.
    Completions(clap_complete::Shell),
    /// An action, once or in bulk.
    Call(Box<Call>),
}

/// An action and its arguments.
pub struct Call {
    /// The action.
    pub action: &'static Action,
    /// Its arguments from the command line.
    pub args: Args,
    /// `--all`.
    pub all: bool,
    /// `--max-items`.
    pub max_items: Option<u64>,
    /// `--batch` (or `run-batch`): the input, `None` for stdin.
    pub batch: Option<Batch>,
}

/// `--batch`'s settings.
pub struct Batch {
    /// The input; `None` for stdin.
    pub input: Option<PathBuf>,
    /// Calls in flight at once.
    pub concurrency: u16,
    /// Each line is the tool's parameters (`tools run-batch`).
    pub lines_are_parameters: bool,
}

/// What `matches` ask for; a usage error as its message.
pub fn invocation(matches: &ArgMatches) -> Result<Invocation, String> {
    let Some((group_name, group_matches)) = matches.subcommand() else {
        return Err("a group is required".to_owned());
    };
    if group_name == "completions" {
        let shell = group_matches
            .get_one::<clap_complete::Shell>("shell")
            .copied()
            .ok_or("a shell is required")?;
        return Ok(Invocation::Completions(shell));
    }
    let group = GROUPS
        .iter()
        .find(|g| g.name == group_name)
        .ok_or_else(|| format!("no group {group_name}"))?;
    let Some((action_name, m)) = group_matches.subcommand() else {
        return Err("an action is required".to_owned());
    };
    let run_batch = action_name == RUN_BATCH;
    let action = group
        .actions
        .iter()
        .find(|a| a.name == action_name || (run_batch && a.items_are_parameters))
        .ok_or_else(|| format!("no action {action_name}"))?;
    let mut values = Map::new();
    for p in action.path {
        if let Some(v) = get::<String>(m, p.name) {
            values.insert(p.name.to_owned(), Value::String(v.clone()));
        }
    }
    if run_batch {
        if let Some(ws) = get::<String>(m, "workspace_id") {
            values.insert("workspace_id".into(), Value::String(ws.clone()));
        }
        let batch = Batch {
            input: get::<PathBuf>(m, "input").cloned(),
            concurrency: get::<u16>(m, "concurrency").copied().unwrap_or(4),
            lines_are_parameters: true,
        };
        return Ok(Invocation::Call(Box::new(Call {
            action,
            args: Args::new(values, None),
            all: false,
            max_items: None,
            batch: Some(batch),
        })));
    }
    for p in action.query {
        if let Some(v) = get::<String>(m, &format!("query.{}", p.name)) {
            values.insert(p.name.to_owned(), Value::String(v.clone()));
        }
    }
    let mut body = None;
    if action.body.is_some() {
        let items: Vec<(String, Value)> = m
            .get_many::<(String, Value)>("items")
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        if action.items_are_parameters {
            if !items.is_empty() {
                let parameters: Map<String, Value> = items.into_iter().collect();
                values.insert("parameters".into(), Value::Object(parameters));
            }
        } else {
            values.extend(items);
        }
        if let Some(ws) = get::<String>(m, "workspace_id") {
            values.insert("workspace_id".into(), Value::String(ws.clone()));
        }
        if let Some(file) = get::<PathBuf>(m, "body") {
            if is_stdin(m) {
                return Err("--body - and --batch - cannot both read stdin".to_owned());
            }
            body = Some(read_body(file)?);
        }
    }
    let batch = get::<PathBuf>(m, "batch").map(|file| Batch {
        input: (file.as_os_str() != "-").then(|| file.clone()),
        concurrency: get::<u16>(m, "concurrency").copied().unwrap_or(4),
        lines_are_parameters: false,
    });
    Ok(Invocation::Call(Box::new(Call {
        action,
        args: Args::new(values, body),
        all: action.list && m.get_flag("all"),
        max_items: if action.list {
            get::<u64>(m, "max_items").copied()
        } else {
            None
        },
        batch,
    })))
}

/// The value of `id`, if the command has it and it was given.
fn get<'m, T: Clone + Send + Sync + 'static>(m: &'m ArgMatches, id: &str) -> Option<&'m T> {
    m.try_get_one::<T>(id).ok().flatten()
}

fn is_stdin(m: &ArgMatches) -> bool {
    get::<PathBuf>(m, "batch").is_some_and(|f| f.as_os_str() == "-")
        && get::<PathBuf>(m, "body").is_some_and(|f| f.as_os_str() == "-")
}

/// `--body FILE` (or `-`, stdin): one JSON object.
fn read_body(file: &PathBuf) -> Result<Value, String> {
    let text = if file.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| format!("--body: cannot read stdin: {e}"))?;
        text
    } else {
        std::fs::read_to_string(file)
            .map_err(|e| format!("--body: cannot read {}: {e}", file.display()))?
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(Value::Object(map)),
        Ok(_) => Err("--body: expected a JSON object".to_owned()),
        Err(e) => Err(format!("--body: not JSON: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_well_formed() {
        command().debug_assert();
    }
}
