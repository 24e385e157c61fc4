//! Builds the tree of a template from its tokens, with the checks Go's parser makes before
//! anything runs: keywords in the right places, `break` / `continue` only inside `range`,
//! variables declared before use, functions that exist, numbers and strings that parse.

use super::funcs::Func;
use super::lexer::{Kind, Token, lex};
use super::number::{Number, parse_number, unquote, unquote_char};
use super::{Limits, ParseError};

/// A list of nodes, executed in order.
pub(super) type List = Vec<Node>;

/// One node of the tree.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Node {
    /// Literal text.
    Text(String),
    /// `{{pipeline}}`: prints the value unless the pipeline declares variables.
    Action(Pipe),
    /// `{{if}}`, `{{with}}`, `{{range}}` (with their `else` branch).
    Control(Box<Control>),
    /// `{{break}}`.
    Break,
    /// `{{continue}}`.
    Continue,
    /// `{{template "name" pipeline}}` (also what `{{block}}` leaves in place).
    Template {
        pos: usize,
        name: Vec<u8>,
        pipe: Option<Pipe>,
    },
}

/// The templates a text defines with `{{define}}` / `{{block}}`, in definition order.
pub(super) type Definitions = Vec<(Vec<u8>, List)>;

/// Which control structure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ControlKind {
    If,
    With,
    Range,
}

/// `{{if pipe}} list {{else}} else_list {{end}}` and the like.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Control {
    pub kind: ControlKind,
    pub pipe: Pipe,
    pub list: List,
    pub else_list: Option<List>,
}

/// A pipeline: optional variable declarations, then commands joined by `|`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Pipe {
    pub pos: usize,
    pub decl: Vec<String>,
    pub is_assign: bool,
    pub cmds: Vec<Command>,
}

/// One command: a function, field or value, and its arguments.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Command {
    pub args: Vec<Arg>,
}

/// An operand.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Arg {
    /// `.A.B`.
    Field { pos: usize, path: Vec<String> },
    /// `$x.A.B` (`name` includes the `$`).
    Variable {
        pos: usize,
        name: String,
        path: Vec<String>,
    },
    /// A built-in function.
    Function { pos: usize, func: Func },
    /// `.`.
    Dot,
    /// `nil`.
    Nil { pos: usize },
    /// `true` / `false`.
    Bool(bool),
    /// A number constant.
    Number { pos: usize, number: Number },
    /// A string constant (bytes: `"\xff"` is a valid Go string).
    String(Vec<u8>),
    /// `( pipeline )`.
    Pipe(Box<Pipe>),
    /// `(pipeline).A.B` or `func.A`.
    Chain {
        pos: usize,
        node: Box<Arg>,
        path: Vec<String>,
    },
}

/// What the parser found: the tree and the root field paths it reads.
pub(super) struct Parsed {
    pub root: List,
    pub definitions: Definitions,
    pub variables: Vec<Vec<String>>,
    pub has_actions: bool,
}

type PResult<T> = Result<T, ParseError>;

/// Parses `text` into a tree.
pub(super) fn parse(text: &str, limits: &Limits) -> PResult<Parsed> {
    let mut parser = Parser {
        tokens: lex(text),
        index: 0,
        vars: vec!["$".to_owned()],
        range_depth: 0,
        depth: 0,
        max_depth: limits.max_nesting,
        dot_is_root: true,
        variables: Vec::new(),
        has_actions: false,
        definitions: Vec::new(),
        in_definition: false,
    };
    let main = parser.parse_root()?;
    // The text itself is the template named "" (Go's `template.New("")`); a `{{define ""}}`
    // takes its place when the text has nothing else, and clashes with it otherwise.
    parser.add(Vec::new(), main.clone(), 0)?;
    let root = parser
        .definitions
        .iter()
        .find(|(name, _)| name.is_empty())
        .map_or(main, |(_, list)| list.clone());
    Ok(Parsed {
        root,
        definitions: parser.definitions,
        variables: parser.variables,
        has_actions: parser.has_actions,
    })
}

struct Parser {
    tokens: Vec<Token>,
    index: usize,
    /// Variables declared at this point (Go checks uses at parse time).
    vars: Vec<String>,
    range_depth: usize,
    /// Nesting of control structures and parentheses.
    depth: usize,
    max_depth: usize,
    /// Whether `.` is the template's data here (outside `with` / `range` bodies).
    dot_is_root: bool,
    variables: Vec<Vec<String>>,
    has_actions: bool,
    definitions: Definitions,
    /// Inside `{{define}}` / `{{block}}`: `.` and `$` are the template's argument.
    in_definition: bool,
}

/// Go's `IsEmptyTree`: only white space text (and comments, already dropped).
fn is_empty_tree(list: &List) -> bool {
    list.iter()
        .all(|node| matches!(node, Node::Text(text) if text.trim().is_empty()))
}

fn describe(token: &Token) -> String {
    match token.kind {
        Kind::Eof => "EOF".to_owned(),
        Kind::Error => token.text.clone(),
        Kind::Block
        | Kind::Break
        | Kind::Continue
        | Kind::Define
        | Kind::Else
        | Kind::End
        | Kind::If
        | Kind::Nil
        | Kind::Range
        | Kind::Template
        | Kind::With
        | Kind::Dot => format!("<{}>", token.text),
        _ => {
            let text: String = token.text.chars().take(10).collect();
            if text.len() < token.text.len() {
                format!("{text:?}...")
            } else {
                format!("{text:?}")
            }
        }
    }
}

impl Parser {
    fn token(&self, index: usize) -> &Token {
        // The lexer always ends with Eof or Error, and the parser never reads past either.
        let last = self.tokens.len().saturating_sub(1);
        &self.tokens[index.min(last)]
    }

    fn next(&mut self) -> Token {
        let token = self.token(self.index).clone();
        if self.index < self.tokens.len() {
            self.index += 1;
        }
        token
    }

    fn backup(&mut self) {
        self.index = self.index.saturating_sub(1);
    }

    fn peek(&self) -> &Token {
        self.token(self.index)
    }

    /// Skips white space (as Go's parser does, it stays skipped) and returns the next token.
    fn next_non_space(&mut self) -> Token {
        loop {
            let token = self.next();
            if token.kind != Kind::Space {
                return token;
            }
        }
    }

    fn peek_non_space(&mut self) -> Token {
        let token = self.next_non_space();
        self.backup();
        token
    }

    fn error(&self, pos: usize, message: impl Into<String>) -> ParseError {
        ParseError::Syntax {
            message: message.into(),
            offset: pos,
        }
    }

    fn unexpected(&self, token: &Token, context: &str) -> ParseError {
        if token.kind == Kind::Error {
            return self.error(token.pos, token.text.clone());
        }
        self.error(
            token.pos,
            format!("unexpected {} in {context}", describe(token)),
        )
    }

    fn enter(&mut self, pos: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            let _ = pos;
            return Err(ParseError::TooDeep {
                max: self.max_depth,
            });
        }
        Ok(())
    }

    fn parse_root(&mut self) -> PResult<List> {
        let mut list = Vec::new();
        while self.peek().kind != Kind::Eof {
            if self.peek().kind == Kind::LeftDelim {
                let delim = self.index;
                self.next();
                let token = self.next_non_space();
                if token.kind == Kind::Define {
                    self.has_actions = true;
                    self.parse_definition()?;
                    continue;
                }
                self.index = delim;
            }
            match self.text_or_action()? {
                Item::Node(node) => list.push(node),
                Item::End(pos) => return Err(self.error(pos, "unexpected {{end}}")),
                Item::Else(pos) => return Err(self.error(pos, "unexpected {{else}}")),
            }
        }
        Ok(list)
    }

    /// Go's `Tree.add`: a name is defined once; an empty definition never replaces a
    /// non-empty one, and is replaced by one.
    fn add(&mut self, name: Vec<u8>, list: List, pos: usize) -> PResult<()> {
        match self.definitions.iter_mut().find(|(n, _)| *n == name) {
            None => self.definitions.push((name, list)),
            Some(existing) if is_empty_tree(&existing.1) => existing.1 = list,
            Some(_) if !is_empty_tree(&list) => {
                return Err(self.error(
                    pos,
                    format!(
                        "template: multiple definition of template {:?}",
                        String::from_utf8_lossy(&name)
                    ),
                ));
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// Parses a template body (`{{define}}` or `{{block}}`) in a scope of its own, up to its
    /// `{{end}}`.
    fn definition_body(&mut self, context: &str) -> PResult<List> {
        let saved = (
            std::mem::replace(&mut self.vars, vec!["$".to_owned()]),
            std::mem::replace(&mut self.range_depth, 0),
            std::mem::replace(&mut self.in_definition, true),
        );
        let (list, end) = self.item_list()?;
        (self.vars, self.range_depth, self.in_definition) = saved;
        match end {
            Item::End(_) => Ok(list),
            Item::Else(pos) => {
                Err(self.error(pos, format!("unexpected {{{{else}}}} in {context}")))
            }
            Item::Node(_) => Err(self.error(0, format!("unexpected node in {context}"))),
        }
    }

    fn template_name(&self, token: &Token, context: &str) -> PResult<Vec<u8>> {
        match token.kind {
            Kind::String | Kind::RawString => {
                unquote(&token.text).ok_or_else(|| self.error(token.pos, "invalid syntax"))
            }
            _ => Err(self.unexpected(token, context)),
        }
    }

    fn parse_definition(&mut self) -> PResult<()> {
        const CONTEXT: &str = "define clause";
        let token = self.next_non_space();
        if !matches!(token.kind, Kind::String | Kind::RawString) {
            return Err(self.unexpected(&token, CONTEXT));
        }
        let name = self.template_name(&token, CONTEXT)?;
        let close = self.next_non_space();
        if close.kind != Kind::RightDelim {
            return Err(self.unexpected(&close, CONTEXT));
        }
        self.enter(token.pos)?;
        let list = self.definition_body(CONTEXT)?;
        self.depth -= 1;
        self.add(name, list, token.pos)
    }

    fn block_control(&mut self, keyword: &Token) -> PResult<Item> {
        const CONTEXT: &str = "block clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = self.pipeline(CONTEXT, Kind::RightDelim)?;
        self.enter(token.pos)?;
        let list = self.definition_body(CONTEXT)?;
        self.depth -= 1;
        self.add(name.clone(), list, token.pos)?;
        Ok(Item::Node(Node::Template {
            pos: keyword.pos,
            name,
            pipe: Some(pipe),
        }))
    }

    fn template_control(&mut self, keyword: &Token) -> PResult<Item> {
        const CONTEXT: &str = "template clause";
        let token = self.next_non_space();
        let name = self.template_name(&token, CONTEXT)?;
        let pipe = if self.next_non_space().kind == Kind::RightDelim {
            None
        } else {
            self.backup();
            Some(self.pipeline(CONTEXT, Kind::RightDelim)?)
        };
        Ok(Item::Node(Node::Template {
            pos: keyword.pos,
            name,
            pipe,
        }))
    }

    /// Nodes up to the `{{end}}` or `{{else}}` that closes them.
    fn item_list(&mut self) -> PResult<(List, Item)> {
        let mut list = Vec::new();
        while self.peek_non_space().kind != Kind::Eof {
            match self.text_or_action()? {
                Item::Node(node) => list.push(node),
                end => return Ok((list, end)),
            }
        }
        let pos = self.peek().pos;
        Err(self.error(pos, "unexpected EOF"))
    }

    fn text_or_action(&mut self) -> PResult<Item> {
        let token = self.next_non_space();
        match token.kind {
            Kind::Text => Ok(Item::Node(Node::Text(token.text))),
            Kind::LeftDelim => {
                self.has_actions = true;
                self.action()
            }
            _ => Err(self.unexpected(&token, "input")),
        }
    }

    fn action(&mut self) -> PResult<Item> {
        let token = self.next_non_space();
        match token.kind {
            Kind::Block => self.block_control(&token),
            Kind::Template => self.template_control(&token),
            Kind::Break | Kind::Continue => self.loop_control(&token),
            Kind::Else => self.else_control(token.pos),
            Kind::End => {
                let end = self.next_non_space();
                if end.kind != Kind::RightDelim {
                    return Err(self.unexpected(&end, "end"));
                }
                Ok(Item::End(token.pos))
            }
            Kind::If => self.control(ControlKind::If, token.pos),
            Kind::Range => self.control(ControlKind::Range, token.pos),
            Kind::With => self.control(ControlKind::With, token.pos),
            _ => {
                self.backup();
                let pipe = self.pipeline("command", Kind::RightDelim)?;
                Ok(Item::Node(Node::Action(pipe)))
            }
        }
    }

    fn loop_control(&mut self, keyword: &Token) -> PResult<Item> {
        let name = if keyword.kind == Kind::Break {
            "{{break}}"
        } else {
            "{{continue}}"
        };
        let token = self.next_non_space();
        if token.kind != Kind::RightDelim {
            return Err(self.unexpected(&token, name));
        }
        if self.range_depth == 0 {
            return Err(self.error(keyword.pos, format!("{name} outside {{{{range}}}}")));
        }
        Ok(Item::Node(if keyword.kind == Kind::Break {
            Node::Break
        } else {
            Node::Continue
        }))
    }

    fn else_control(&mut self, pos: usize) -> PResult<Item> {
        // `{{else if}}` / `{{else with}}`: the keyword stays for the enclosing control (white
        // space before it is skipped, as in Go).
        let peek = self.peek_non_space();
        if matches!(peek.kind, Kind::If | Kind::With) {
            return Ok(Item::Else(pos));
        }
        let token = self.next_non_space();
        if token.kind != Kind::RightDelim {
            return Err(self.unexpected(&token, "else"));
        }
        Ok(Item::Else(pos))
    }

    fn control(&mut self, kind: ControlKind, pos: usize) -> PResult<Item> {
        self.enter(pos)?;
        let saved_vars = self.vars.len();
        let context = match kind {
            ControlKind::If => "if",
            ControlKind::With => "with",
            ControlKind::Range => "range",
        };
        let pipe = self.pipeline(context, Kind::RightDelim)?;
        let outer_root = self.dot_is_root;
        if kind != ControlKind::If {
            self.dot_is_root = false;
        }
        if kind == ControlKind::Range {
            self.range_depth += 1;
        }
        let (list, next) = self.item_list()?;
        if kind == ControlKind::Range {
            self.range_depth -= 1;
        }
        self.dot_is_root = outer_root;
        let else_list = match next {
            Item::Else(else_pos) => Some(self.else_branch(kind, else_pos)?),
            _ => None,
        };
        self.vars.truncate(saved_vars);
        self.depth -= 1;
        Ok(Item::Node(Node::Control(Box::new(Control {
            kind,
            pipe,
            list,
            else_list,
        }))))
    }

    fn else_branch(&mut self, kind: ControlKind, pos: usize) -> PResult<List> {
        let chained = match (kind, self.peek().kind) {
            (ControlKind::If, Kind::If) => Some(ControlKind::If),
            (ControlKind::With, Kind::With) => Some(ControlKind::With),
            _ => None,
        };
        if let Some(chained) = chained {
            self.next();
            return match self.control(chained, pos)? {
                Item::Node(node) => Ok(vec![node]),
                _ => Err(self.error(pos, "internal error: control without node")),
            };
        }
        let (list, next) = self.item_list()?;
        match next {
            Item::End(_) => Ok(list),
            Item::Else(else_pos) => Err(self.error(else_pos, "expected end; found {{else}}")),
            Item::Node(_) => Err(self.error(pos, "expected end")),
        }
    }

    fn pipeline(&mut self, context: &str, end: Kind) -> PResult<Pipe> {
        let pos = self.peek_non_space().pos;
        let mut pipe = Pipe {
            pos,
            decl: Vec::new(),
            is_assign: false,
            cmds: Vec::new(),
        };
        self.declarations(&mut pipe, context)?;
        loop {
            let token = self.next_non_space();
            match token.kind {
                kind if kind == end => {
                    self.check_pipeline(&pipe, context, token.pos)?;
                    return Ok(pipe);
                }
                Kind::Bool
                | Kind::CharConstant
                | Kind::Complex
                | Kind::Dot
                | Kind::Field
                | Kind::Identifier
                | Kind::Number
                | Kind::Nil
                | Kind::RawString
                | Kind::String
                | Kind::Variable
                | Kind::LeftParen => {
                    self.backup();
                    let cmd = self.command()?;
                    pipe.cmds.push(cmd);
                }
                _ => return Err(self.unexpected(&token, context)),
            }
        }
    }

    /// `$x :=`, `$x =`, `$i, $v :=` at the start of a pipeline.
    fn declarations(&mut self, pipe: &mut Pipe, context: &str) -> PResult<()> {
        loop {
            let start = self.index;
            let v = self.peek_non_space();
            if v.kind != Kind::Variable {
                return Ok(());
            }
            self.next_non_space();
            let next = self.peek_non_space();
            match next.kind {
                Kind::Assign | Kind::Declare => {
                    pipe.is_assign = next.kind == Kind::Assign;
                    self.next_non_space();
                    pipe.decl.push(v.text.clone());
                    self.vars.push(v.text);
                    return Ok(());
                }
                Kind::Char if next.text == "," => {
                    self.next_non_space();
                    pipe.decl.push(v.text.clone());
                    self.vars.push(v.text);
                    if context == "range" && pipe.decl.len() < 2 {
                        let after = self.peek_non_space();
                        if matches!(
                            after.kind,
                            Kind::Variable | Kind::RightDelim | Kind::RightParen
                        ) {
                            continue;
                        }
                        return Err(self.error(after.pos, "range can only initialize variables"));
                    }
                    return Err(self.error(next.pos, format!("too many declarations in {context}")));
                }
                _ => {
                    self.index = start;
                    return Ok(());
                }
            }
        }
    }

    fn check_pipeline(&self, pipe: &Pipe, context: &str, pos: usize) -> PResult<()> {
        if pipe.cmds.is_empty() {
            return Err(self.error(pos, format!("missing value for {context}")));
        }
        for (i, cmd) in pipe.cmds.iter().enumerate().skip(1) {
            if matches!(
                cmd.args.first(),
                Some(
                    Arg::Bool(_) | Arg::Dot | Arg::Nil { .. } | Arg::Number { .. } | Arg::String(_)
                )
            ) {
                return Err(self.error(
                    pos,
                    format!("non executable command in pipeline stage {}", i + 1),
                ));
            }
        }
        Ok(())
    }

    fn command(&mut self) -> PResult<Command> {
        let mut args = Vec::new();
        loop {
            self.peek_non_space();
            if let Some(operand) = self.operand()? {
                args.push(operand);
            }
            let token = self.next();
            match token.kind {
                Kind::Space => continue,
                Kind::RightDelim | Kind::RightParen => self.backup(),
                Kind::Pipe => {}
                _ => return Err(self.unexpected(&token, "operand")),
            }
            break;
        }
        if args.is_empty() {
            let pos = self.peek().pos;
            return Err(self.error(pos, "empty command"));
        }
        Ok(Command { args })
    }

    fn operand(&mut self) -> PResult<Option<Arg>> {
        let Some(node) = self.term()? else {
            return Ok(None);
        };
        if self.peek().kind != Kind::Field {
            if let Arg::Field { path, .. } = &node {
                self.note_root_field(path);
            }
            return Ok(Some(node));
        }
        let pos = self.peek().pos;
        let mut fields = Vec::new();
        while self.peek().kind == Kind::Field {
            let token = self.next();
            fields.push(token.text.get(1..).unwrap_or_default().to_owned());
        }
        let node = match node {
            Arg::Field { pos, mut path } => {
                path.extend(fields);
                self.note_root_field(&path);
                Arg::Field { pos, path }
            }
            Arg::Variable {
                pos,
                name,
                mut path,
            } => {
                path.extend(fields);
                if name == "$" && !self.in_definition {
                    self.variables.push(path.clone());
                }
                Arg::Variable { pos, name, path }
            }
            Arg::Bool(_) | Arg::String(_) | Arg::Number { .. } | Arg::Nil { .. } | Arg::Dot => {
                return Err(self.error(pos, "unexpected . after term"));
            }
            other => Arg::Chain {
                pos,
                node: Box::new(other),
                path: fields,
            },
        };
        Ok(Some(node))
    }

    fn note_root_field(&mut self, path: &[String]) {
        if self.dot_is_root && !self.in_definition {
            self.variables.push(path.to_vec());
        }
    }

    fn term(&mut self) -> PResult<Option<Arg>> {
        let token = self.next_non_space();
        let pos = token.pos;
        let arg = match token.kind {
            Kind::Identifier => match Func::by_name(&token.text) {
                Some(func) => Arg::Function { pos, func },
                None => {
                    return Err(self.error(pos, format!("function {:?} not defined", token.text)));
                }
            },
            Kind::Dot => Arg::Dot,
            Kind::Nil => Arg::Nil { pos },
            Kind::Variable => {
                if !self.vars.contains(&token.text) {
                    return Err(self.error(pos, format!("undefined variable {:?}", token.text)));
                }
                Arg::Variable {
                    pos,
                    name: token.text,
                    path: Vec::new(),
                }
            }
            Kind::Field => Arg::Field {
                pos,
                path: vec![token.text.get(1..).unwrap_or_default().to_owned()],
            },
            Kind::Bool => Arg::Bool(token.text == "true"),
            Kind::CharConstant => match unquote_char(&token.text) {
                Some(c) => Arg::Number {
                    pos,
                    number: Number::rune(c),
                },
                None => {
                    return Err(
                        self.error(pos, format!("malformed character constant: {}", token.text))
                    );
                }
            },
            Kind::Complex => return Err(self.unsupported_number(&token)),
            Kind::Number => match parse_number(&token.text) {
                Ok(Some(number)) => Arg::Number { pos, number },
                Ok(None) => return Err(self.unsupported_number(&token)),
                Err(message) => return Err(self.error(pos, message)),
            },
            Kind::LeftParen => {
                self.enter(pos)?;
                let pipe = self.pipeline("parenthesized pipeline", Kind::RightParen)?;
                self.depth -= 1;
                Arg::Pipe(Box::new(pipe))
            }
            Kind::String | Kind::RawString => match unquote(&token.text) {
                Some(bytes) => Arg::String(bytes),
                None => return Err(self.error(pos, "invalid syntax")),
            },
            _ => {
                self.backup();
                return Ok(None);
            }
        };
        Ok(Some(arg))
    }

    fn unsupported_number(&self, token: &Token) -> ParseError {
        ParseError::Unsupported {
            what: format!("complex number {}", token.text),
            offset: token.pos,
        }
    }
}

/// What `text_or_action` found.
enum Item {
    Node(Node),
    End(usize),
    Else(usize),
}
