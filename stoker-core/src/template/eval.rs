//! Runs a parsed template against Stoker's data, as Go's `text/template` executes one with
//! `missingkey=error`: pipelines, variables and their scopes, `if` / `with` / `range` /
//! `break` / `continue`, field chains and the built-in functions, within the render limits.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::format::{sprint, sprintf, sprintln};
use super::funcs::{self, Func};
use super::number::Ideal;
use super::parser::{Arg, Command, Control, ControlKind, Definitions, List, Node, Pipe};
use super::{Limits, RenderError};
use crate::context::TemplateContext;

/// A value, as Go's reflection would see the data Stoker passes to a template.
#[derive(Debug, Clone)]
pub(crate) enum Value<'a> {
    /// No value (Go's invalid `reflect.Value`; `nil` where a function takes `any`).
    Invalid,
    Bool(bool),
    /// Go `int`.
    Int(i64),
    /// Go `uint8`: a byte of a string (`index "abc" 0`).
    Byte(u8),
    /// Go `float64`.
    Float(f64),
    /// Go `string`: bytes, not necessarily UTF-8.
    Str(Cow<'a, [u8]>),
    /// `.Vars` / `.Labels`: Go `map[string]string`; the name is for error messages.
    Map(&'static str, &'a BTreeMap<String, String>),
    /// The data itself: Go `map[string]interface{}` holding the variables that are set.
    Root(&'a TemplateContext),
}

/// The data's keys, sorted as Go sorts map keys.
const ROOT_KEYS: [&str; 9] = [
    "CRName",
    "Commit",
    "GatewayName",
    "Labels",
    "Namespace",
    "PodName",
    "PodOrdinal",
    "Ref",
    "Vars",
];

/// What reading a key of the data found.
enum RootEntry<'a> {
    Value(Value<'a>),
    Unset,
    Unknown,
}

fn root_get<'a>(ctx: &'a TemplateContext, key: &str) -> RootEntry<'a> {
    let text = |v: &'a Option<String>| match v {
        Some(s) => RootEntry::Value(Value::Str(Cow::Borrowed(s.as_bytes()))),
        None => RootEntry::Unset,
    };
    match key {
        "CRName" => text(&ctx.cr_name),
        "Commit" => text(&ctx.commit),
        "GatewayName" => text(&ctx.gateway_name),
        "Namespace" => text(&ctx.namespace),
        "PodName" => text(&ctx.pod_name),
        "Ref" => text(&ctx.reference),
        // An integer, as in stoker-operator (`eq .PodOrdinal 0`, `printf "%02d"`).
        "PodOrdinal" => match ctx.pod_ordinal.as_deref().map(str::parse::<i64>) {
            Some(Ok(n)) => RootEntry::Value(Value::Int(n)),
            Some(Err(_)) => text(&ctx.pod_ordinal),
            None => RootEntry::Unset,
        },
        "Labels" => RootEntry::Value(Value::Map("Labels", &ctx.labels)),
        "Vars" => RootEntry::Value(Value::Map("Vars", &ctx.vars)),
        _ => RootEntry::Unknown,
    }
}

impl<'a> Value<'a> {
    pub fn is_valid(&self) -> bool {
        !matches!(self, Value::Invalid)
    }

    /// Go's name of the value's type (`%T`, error notation).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Invalid => "<nil>",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Byte(_) => "uint8",
            Value::Float(_) => "float64",
            Value::Str(_) => "string",
            Value::Map(..) => "map[string]string",
            Value::Root(_) => "map[string]interface {}",
        }
    }

    /// A map's entries in Go's order (sorted keys).
    pub fn map_entries(&self) -> Vec<(&'a str, Value<'a>)> {
        match self {
            Value::Map(_, map) => map
                .iter()
                .map(|(k, v)| (k.as_str(), Value::Str(Cow::Borrowed(v.as_bytes()))))
                .collect(),
            Value::Root(ctx) => ROOT_KEYS
                .iter()
                .filter_map(|&k| match root_get(ctx, k) {
                    RootEntry::Value(v) => Some((k, v)),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    pub fn map_len(&self) -> usize {
        match self {
            Value::Map(_, map) => map.len(),
            Value::Root(_) => self.map_entries().len(),
            _ => 0,
        }
    }

    /// The value at `key` of a map, `None` when absent.
    pub fn map_get(&self, key: &str) -> Option<Value<'a>> {
        match self {
            Value::Map(_, map) => map
                .get(key)
                .map(|v| Value::Str(Cow::Borrowed(v.as_bytes()))),
            Value::Root(ctx) => match root_get(ctx, key) {
                RootEntry::Value(v) => Some(v),
                _ => None,
            },
            _ => None,
        }
    }
}

/// How a node finished: normally, or by `{{break}}` / `{{continue}}`.
#[derive(PartialEq, Eq)]
enum Flow {
    Normal,
    Break,
    Continue,
}

type EResult<T> = Result<T, RenderError>;

/// Executes `root` with `ctx` as the data.
pub(super) fn execute<'a>(
    root: &'a List,
    definitions: &'a Definitions,
    ctx: &'a TemplateContext,
    limits: &Limits,
) -> EResult<Vec<u8>> {
    let mut state = State {
        out: Vec::new(),
        vars: vec![("$".to_owned(), Value::Root(ctx), false)],
        dot_boxed: false,
        steps: 0,
        work: 0,
        limits,
        pos: 0,
        depth: 0,
        definitions,
    };
    let dot = Value::Root(ctx);
    state.walk_list(&dot, root)?;
    Ok(state.out)
}

struct State<'a, 'l> {
    out: Vec<u8>,
    /// Variables in scope, innermost last: name, value, and whether the value is held in an
    /// interface (read from the data map by `range`; see [`State::dot_boxed`]).
    vars: Vec<(String, Value<'a>, bool)>,
    /// Whether `.` is held in an interface: inside `range` over the data map, each element is
    /// an `interface{}` in Go. It shows only where Go does not unwrap it (`slice` indexes).
    dot_boxed: bool,
    steps: usize,
    /// Bytes produced by functions, written or not.
    work: usize,
    limits: &'l Limits,
    /// Offset of the node being executed, for error messages.
    pos: usize,
    /// Nesting of control structures, parenthesised pipelines and template calls being
    /// executed (template calls are the only way to recurse at run time).
    depth: usize,
    definitions: &'a Definitions,
}

impl<'a> State<'a, '_> {
    fn error<T>(&self, message: impl Into<String>) -> EResult<T> {
        Err(RenderError::Exec {
            message: message.into(),
            offset: self.pos,
        })
    }

    fn step(&mut self) -> EResult<()> {
        self.steps += 1;
        if self.steps > self.limits.max_steps {
            return Err(RenderError::TooManySteps {
                max: self.limits.max_steps,
            });
        }
        Ok(())
    }

    fn charge(&mut self, bytes: usize) -> EResult<()> {
        self.work = self.work.saturating_add(bytes);
        if self.work > self.limits.max_work {
            return Err(RenderError::TooMuchWork {
                max: self.limits.max_work,
            });
        }
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> EResult<()> {
        if self.out.len() + bytes.len() > self.limits.max_output {
            return Err(RenderError::OutputTooLarge {
                max: self.limits.max_output,
            });
        }
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    fn walk_list(&mut self, dot: &Value<'a>, list: &'a List) -> EResult<Flow> {
        for node in list {
            let flow = self.walk(dot, node)?;
            if flow != Flow::Normal {
                return Ok(flow);
            }
        }
        Ok(Flow::Normal)
    }

    fn walk(&mut self, dot: &Value<'a>, node: &'a Node) -> EResult<Flow> {
        self.step()?;
        match node {
            Node::Text(text) => self.write(text.as_bytes())?,
            Node::Action(pipe) => {
                let value = self.eval_pipeline(dot, pipe)?;
                if pipe.decl.is_empty() {
                    let text = print_value(&value);
                    self.write(&text)?;
                }
            }
            Node::Break => return Ok(Flow::Break),
            Node::Continue => return Ok(Flow::Continue),
            Node::Control(control) => {
                self.enter()?;
                let flow = match control.kind {
                    ControlKind::If | ControlKind::With => self.walk_if_or_with(dot, control),
                    ControlKind::Range => self.walk_range(dot, control),
                };
                self.depth -= 1;
                return flow;
            }
            Node::Template { pos, name, pipe } => {
                self.pos = *pos;
                self.enter()?;
                self.walk_template(dot, name, pipe.as_ref())?;
                self.depth -= 1;
            }
        }
        Ok(Flow::Normal)
    }

    fn enter(&mut self) -> EResult<()> {
        self.depth += 1;
        if self.depth > 2 * self.limits.max_nesting {
            return Err(RenderError::TooDeep {
                max: self.limits.max_nesting,
            });
        }
        Ok(())
    }

    /// `{{template "name" pipeline}}`: runs the named template with the pipeline's value as
    /// `.` and `$`, and no other variable.
    fn walk_template(
        &mut self,
        dot: &Value<'a>,
        name: &[u8],
        pipe: Option<&'a Pipe>,
    ) -> EResult<()> {
        let definitions = self.definitions;
        let Some((_, list)) = definitions.iter().find(|(n, _)| n == name) else {
            return self.error(format!(
                "template {:?} not defined",
                String::from_utf8_lossy(name)
            ));
        };
        let value = match pipe {
            Some(pipe) => self.eval_pipeline(dot, pipe)?,
            None => Value::Invalid,
        };
        let vars = std::mem::replace(&mut self.vars, vec![("$".to_owned(), value.clone(), false)]);
        let boxed = std::mem::replace(&mut self.dot_boxed, false);
        let result = self.walk_list(&value, list);
        self.vars = vars;
        self.dot_boxed = boxed;
        result.map(|_| ())
    }

    fn walk_if_or_with(&mut self, dot: &Value<'a>, control: &'a Control) -> EResult<Flow> {
        let mark = self.vars.len();
        let value = self.eval_pipeline(dot, &control.pipe)?;
        let flow = if funcs::truth(&value) {
            if control.kind == ControlKind::With {
                let outer_boxed = std::mem::replace(&mut self.dot_boxed, false);
                let flow = self.walk_list(&value, &control.list);
                self.dot_boxed = outer_boxed;
                flow
            } else {
                self.walk_list(dot, &control.list)
            }
        } else if let Some(else_list) = &control.else_list {
            self.walk_list(dot, else_list)
        } else {
            Ok(Flow::Normal)
        };
        self.vars.truncate(mark);
        flow
    }

    fn walk_range(&mut self, dot: &Value<'a>, control: &'a Control) -> EResult<Flow> {
        let outer = self.vars.len();
        let value = self.eval_pipeline(dot, &control.pipe)?;
        let mark = self.vars.len();
        let items: Vec<(Value<'a>, Value<'a>)> = match &value {
            Value::Int(n) => {
                self.no_second_variable(control, &value)?;
                let n = (*n).max(0);
                if n as usize > self.limits.max_steps {
                    return Err(RenderError::TooManySteps {
                        max: self.limits.max_steps,
                    });
                }
                (0..n).map(|i| (Value::Invalid, Value::Int(i))).collect()
            }
            Value::Byte(n) => {
                self.no_second_variable(control, &value)?;
                (0..*n).map(|i| (Value::Invalid, Value::Byte(i))).collect()
            }
            Value::Map(..) | Value::Root(_) => value
                .map_entries()
                .into_iter()
                .map(|(k, v)| (Value::Str(Cow::Borrowed(k.as_bytes())), v))
                .collect(),
            Value::Invalid => Vec::new(),
            other => {
                return self.error(format!(
                    "range can't iterate over {}",
                    String::from_utf8_lossy(&print_value(other))
                ));
            }
        };
        let ran = !items.is_empty();
        let boxed = matches!(value, Value::Root(_));
        let outer_boxed = self.dot_boxed;
        for (key, elem) in items {
            self.step()?;
            self.set_range_vars(control, key, elem.clone(), boxed, mark)?;
            self.dot_boxed = boxed;
            let flow = self.walk_list(&elem, &control.list);
            self.dot_boxed = outer_boxed;
            self.vars.truncate(mark);
            if flow? == Flow::Break {
                break;
            }
        }
        if !ran && let Some(else_list) = &control.else_list {
            let flow = self.walk_list(dot, else_list);
            self.vars.truncate(outer);
            // As in Go: `{{continue}}` in a range's else branch continues the enclosing range,
            // while `{{break}}` there only ends this one (Go's range catches its own break
            // panics around its else branch too).
            return flow.map(|flow| match flow {
                Flow::Continue => Flow::Continue,
                Flow::Normal | Flow::Break => Flow::Normal,
            });
        }
        self.vars.truncate(outer);
        Ok(Flow::Normal)
    }

    fn no_second_variable(&self, control: &Control, value: &Value<'_>) -> EResult<()> {
        if control.pipe.decl.len() > 1 {
            return self.error(format!(
                "can't use {} to iterate over more than one variable",
                String::from_utf8_lossy(&print_value(value))
            ));
        }
        Ok(())
    }

    fn set_range_vars(
        &mut self,
        control: &Control,
        key: Value<'a>,
        elem: Value<'a>,
        boxed: bool,
        mark: usize,
    ) -> EResult<()> {
        let decl = &control.pipe.decl;
        if decl.is_empty() {
            return Ok(());
        }
        if control.pipe.is_assign {
            if decl.len() > 1 {
                self.set_var(&decl[0], key, false)?;
                self.set_var(&decl[1], elem, boxed)?;
            } else {
                self.set_var(&decl[0], elem, boxed)?;
            }
            return Ok(());
        }
        // Declared: the pipeline pushed them; the last pushed gets the element.
        if let Some(slot) = mark.checked_sub(1).and_then(|i| self.vars.get_mut(i)) {
            slot.1 = elem;
            slot.2 = boxed;
        }
        if decl.len() > 1
            && let Some(slot) = mark.checked_sub(2).and_then(|i| self.vars.get_mut(i))
        {
            slot.1 = key;
            slot.2 = false;
        }
        Ok(())
    }

    fn set_var(&mut self, name: &str, value: Value<'a>, boxed: bool) -> EResult<()> {
        match self.vars.iter_mut().rev().find(|(n, _, _)| n == name) {
            Some(slot) => {
                slot.1 = value;
                slot.2 = boxed;
                Ok(())
            }
            None => self.error(format!("undefined variable: {name}")),
        }
    }

    fn var_value(&self, name: &str) -> EResult<Value<'a>> {
        self.var_boxed(name).map(|(v, _)| v)
    }

    fn var_boxed(&self, name: &str) -> EResult<(Value<'a>, bool)> {
        match self.vars.iter().rev().find(|(n, _, _)| n == name) {
            Some((_, v, boxed)) => Ok((v.clone(), *boxed)),
            None => self.error(format!("undefined variable: {name}")),
        }
    }

    fn eval_pipeline(&mut self, dot: &Value<'a>, pipe: &'a Pipe) -> EResult<Value<'a>> {
        self.enter()?;
        let value = self.eval_pipeline_inner(dot, pipe);
        self.depth -= 1;
        value
    }

    fn eval_pipeline_inner(&mut self, dot: &Value<'a>, pipe: &'a Pipe) -> EResult<Value<'a>> {
        self.pos = pipe.pos;
        let mut value: Option<Value<'a>> = None;
        for cmd in &pipe.cmds {
            self.step()?;
            value = Some(self.eval_command(dot, cmd, value)?);
        }
        let value = value.unwrap_or(Value::Invalid);
        for name in &pipe.decl {
            if pipe.is_assign {
                self.set_var(name, value.clone(), false)?;
            } else {
                self.vars.push((name.clone(), value.clone(), false));
            }
        }
        Ok(value)
    }

    fn not_a_function(&self, args: &[Arg], final_value: &Option<Value<'a>>) -> EResult<()> {
        if args.len() > 1 || final_value.is_some() {
            return self.error("can't give argument to non-function");
        }
        Ok(())
    }

    fn eval_command(
        &mut self,
        dot: &Value<'a>,
        cmd: &'a Command,
        final_value: Option<Value<'a>>,
    ) -> EResult<Value<'a>> {
        let Some(first) = cmd.args.first() else {
            return self.error("empty command");
        };
        match first {
            Arg::Field { pos, path } => {
                self.pos = *pos;
                self.eval_field_chain(dot.clone(), path, &cmd.args, final_value)
            }
            Arg::Chain { pos, node, path } => {
                let receiver = self.eval_arg(dot, node)?;
                self.pos = *pos;
                self.eval_field_chain(receiver, path, &cmd.args, final_value)
            }
            Arg::Function { pos, func } => {
                self.pos = *pos;
                self.eval_call(dot, *func, &cmd.args[1..], final_value)
            }
            Arg::Pipe(pipe) => {
                self.not_a_function(&cmd.args, &final_value)?;
                self.eval_pipeline(dot, pipe)
            }
            Arg::Variable { pos, name, path } => {
                self.pos = *pos;
                let value = self.var_value(name)?;
                if path.is_empty() {
                    self.not_a_function(&cmd.args, &final_value)?;
                    return Ok(value);
                }
                self.eval_field_chain(value, path, &cmd.args, final_value)
            }
            other => {
                self.not_a_function(&cmd.args, &final_value)?;
                if let Arg::Nil { pos } = other {
                    self.pos = *pos;
                    return self.error("nil is not a command");
                }
                self.eval_arg(dot, other)
            }
        }
    }

    fn eval_field_chain(
        &mut self,
        mut receiver: Value<'a>,
        path: &[String],
        args: &[Arg],
        final_value: Option<Value<'a>>,
    ) -> EResult<Value<'a>> {
        let has_args = args.len() > 1 || final_value.is_some();
        for (i, name) in path.iter().enumerate() {
            let last = i + 1 == path.len();
            receiver = self.eval_field(name, &receiver, last && has_args)?;
        }
        Ok(receiver)
    }

    fn eval_field(&self, name: &str, receiver: &Value<'a>, has_args: bool) -> EResult<Value<'a>> {
        match receiver {
            Value::Invalid => self.error(format!("nil data; no entry for key {name:?}")),
            Value::Root(ctx) => {
                if has_args {
                    return self.error(format!("{name} is not a method but has arguments"));
                }
                match root_get(ctx, name) {
                    RootEntry::Value(v) => Ok(v),
                    RootEntry::Unset => Err(RenderError::Variable {
                        message: format!("variable .{name} is not set"),
                        offset: self.pos,
                    }),
                    RootEntry::Unknown => Err(RenderError::Variable {
                        message: format!("unknown variable .{name}"),
                        offset: self.pos,
                    }),
                }
            }
            Value::Map(map_name, map) => {
                if has_args {
                    return self.error(format!("{name} is not a method but has arguments"));
                }
                match map.get(name) {
                    Some(v) => Ok(Value::Str(Cow::Borrowed(v.as_bytes()))),
                    None => Err(RenderError::Variable {
                        message: format!("variable .{map_name}.{name} is not set"),
                        offset: self.pos,
                    }),
                }
            }
            other => self.error(format!(
                "can't evaluate field {name} in type {}",
                other.type_name()
            )),
        }
    }

    /// An argument's value (Go's `evalArg` for parameters of type `any` or `reflect.Value`).
    fn eval_arg(&mut self, dot: &Value<'a>, arg: &'a Arg) -> EResult<Value<'a>> {
        match arg {
            Arg::Dot => Ok(dot.clone()),
            Arg::Nil { .. } => Ok(Value::Invalid),
            Arg::Bool(b) => Ok(Value::Bool(*b)),
            Arg::String(s) => Ok(Value::Str(Cow::Borrowed(s))),
            Arg::Number { pos, number } => match number.ideal {
                Ideal::Int(i) => Ok(Value::Int(i)),
                Ideal::Float(f) => Ok(Value::Float(f)),
                Ideal::Overflow => {
                    self.pos = *pos;
                    self.error(format!("{} overflows int", number.text))
                }
            },
            Arg::Field { pos, path } => {
                self.pos = *pos;
                self.eval_field_chain(dot.clone(), path, &[], None)
            }
            Arg::Variable { pos, name, path } => {
                self.pos = *pos;
                let value = self.var_value(name)?;
                self.eval_field_chain(value, path, &[], None)
            }
            Arg::Pipe(pipe) => self.eval_pipeline(dot, pipe),
            Arg::Function { pos, func } => {
                self.pos = *pos;
                self.eval_call(dot, *func, &[], None)
            }
            Arg::Chain { pos, node, path } => {
                let receiver = self.eval_arg(dot, node)?;
                self.pos = *pos;
                self.eval_field_chain(receiver, path, &[], None)
            }
        }
    }

    fn eval_call(
        &mut self,
        dot: &Value<'a>,
        func: Func,
        args: &'a [Arg],
        final_value: Option<Value<'a>>,
    ) -> EResult<Value<'a>> {
        let count = args.len() + usize::from(final_value.is_some());
        let (min, max) = func.arity();
        if count < min || max.is_some_and(|max| count > max) {
            return self.error(format!("wrong number of args for {}", func.name()));
        }
        let pos = self.pos;
        match func {
            Func::And | Func::Or => {
                let want = func == Func::Or;
                let mut value = Value::Invalid;
                for arg in args {
                    value = self.eval_arg(dot, arg)?;
                    if funcs::truth(&value) == want {
                        return Ok(value);
                    }
                }
                Ok(final_value.unwrap_or(value))
            }
            Func::Printf => {
                let format = match args.first() {
                    Some(first) => self.eval_format(dot, first)?,
                    None => match &final_value {
                        Some(Value::Str(s)) => s.to_vec(),
                        _ => return self.error("printf: format is not a string"),
                    },
                };
                let rest = if args.is_empty() { &[][..] } else { &args[1..] };
                let mut values =
                    self.eval_args(dot, rest, final_value.filter(|_| !args.is_empty()))?;
                let out = sprintf(&format, &values);
                values.clear();
                self.produced(out)
            }
            Func::Slice => {
                // Go's `slice` does not unwrap interfaces in its indexes: a number read from
                // the data map (`.PodOrdinal`) is refused there.
                for arg in args.iter().skip(1) {
                    if self.is_boxed(dot, arg)? {
                        return self.error(
                            "error calling slice: cannot index slice/array with type interface {}",
                        );
                    }
                }
                let values = self.eval_args(dot, args, final_value)?;
                self.pos = pos;
                self.apply(func, values)
            }
            _ => {
                let values = self.eval_args(dot, args, final_value)?;
                self.pos = pos;
                self.apply(func, values)
            }
        }
    }

    /// Whether `arg` evaluates to a value held in an interface: a field of the data map
    /// (`.PodOrdinal`, `$.Ref`), or `.` / a variable set by `range` over the data map.
    fn is_boxed(&self, dot: &Value<'a>, arg: &Arg) -> EResult<bool> {
        Ok(match arg {
            Arg::Dot => self.dot_boxed,
            Arg::Field { path, .. } => path.len() == 1 && matches!(dot, Value::Root(_)),
            Arg::Variable { name, path, .. } => {
                let (value, boxed) = self.var_boxed(name)?;
                match path.len() {
                    0 => boxed,
                    1 => matches!(value, Value::Root(_)),
                    _ => false,
                }
            }
            _ => false,
        })
    }

    fn eval_args(
        &mut self,
        dot: &Value<'a>,
        args: &'a [Arg],
        final_value: Option<Value<'a>>,
    ) -> EResult<Vec<Value<'a>>> {
        let mut values = Vec::with_capacity(args.len() + 1);
        for arg in args {
            values.push(self.eval_arg(dot, arg)?);
        }
        values.extend(final_value);
        Ok(values)
    }

    /// `printf`'s first argument: Go requires a `string`.
    fn eval_format(&mut self, dot: &Value<'a>, arg: &'a Arg) -> EResult<Vec<u8>> {
        match arg {
            Arg::String(s) => Ok(s.clone()),
            Arg::Bool(_) | Arg::Number { .. } | Arg::Nil { .. } => {
                self.error("printf: expected string")
            }
            other => match self.eval_arg(dot, other)? {
                Value::Str(s) => Ok(s.into_owned()),
                value => self.error(format!(
                    "printf: wrong type for value; expected string; got {}",
                    value.type_name()
                )),
            },
        }
    }

    fn produced(&mut self, bytes: Vec<u8>) -> EResult<Value<'a>> {
        self.charge(bytes.len())?;
        Ok(Value::Str(Cow::Owned(bytes)))
    }

    fn apply(&mut self, func: Func, values: Vec<Value<'a>>) -> EResult<Value<'a>> {
        let first = values.first().cloned().unwrap_or(Value::Invalid);
        let rest = values.get(1..).unwrap_or_default();
        let second = rest.first().cloned().unwrap_or(Value::Invalid);
        let result = match func {
            Func::Not => Ok(Value::Bool(!funcs::truth(&first))),
            Func::Call => Err("call of a value that is not a function".to_owned()),
            Func::Eq => funcs::eq(&first, rest).map(Value::Bool),
            Func::Ne => funcs::eq(&first, rest).map(|b| Value::Bool(!b)),
            Func::Lt => funcs::lt(&first, &second).map(Value::Bool),
            Func::Le => funcs::le(&first, &second).map(Value::Bool),
            Func::Gt => funcs::le(&first, &second).map(|b| Value::Bool(!b)),
            Func::Ge => funcs::lt(&first, &second).map(|b| Value::Bool(!b)),
            Func::Len => funcs::len(&first),
            Func::Index => funcs::index(&first, rest),
            Func::Slice => funcs::slice(&first, rest),
            Func::Print => return self.produced(sprint(&values)),
            Func::Println => return self.produced(sprintln(&values)),
            Func::Urlquery => return self.produced(funcs::urlquery(&values)),
            Func::Js => return self.produced(funcs::js(&values)),
            Func::Html => return self.produced(funcs::html(&values)),
            Func::And | Func::Or | Func::Printf => Err("internal error".to_owned()),
        };
        result.or_else(|message| self.error(format!("error calling {}: {message}", func.name())))
    }
}

/// How an action prints its value: `<no value>` for none, else Go's `%v`.
pub(super) fn print_value(value: &Value<'_>) -> Vec<u8> {
    if matches!(value, Value::Invalid) {
        return b"<no value>".to_vec();
    }
    sprint(std::slice::from_ref(value))
}
