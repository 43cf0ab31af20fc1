//! SQL name scopes: which FROM items a column reference can see.

/// What a FROM item stands for.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// A real relation; the index of its access in the statement.
    Relation(usize),
    /// A subquery, CTE or VALUES list, with its output column names when
    /// they can be known. Reads inside it were recorded when it was walked.
    Derived(Option<Vec<String>>),
}

#[derive(Debug, Clone)]
pub(crate) struct FromItem {
    /// The name a column reference qualifies with: the alias, or else the
    /// relation's own name.
    pub name: String,
    /// The schema, for `schema.table.column` references to unaliased
    /// relations.
    pub schema: Option<String>,
    pub source: Source,
}

#[derive(Debug, Clone)]
pub(crate) struct Cte {
    pub name: String,
    pub columns: Option<Vec<String>>,
}

/// One query level: a SELECT, or the target and sources of a DML statement.
#[derive(Debug, Default)]
pub(crate) struct Level {
    pub items: Vec<FromItem>,
    pub ctes: Vec<Cte>,
    /// Set while a non-LATERAL subquery in this level's FROM list is
    /// walked: it may not see its siblings.
    pub hidden: bool,
    /// Output column aliases, which ORDER BY and GROUP BY may name.
    pub output_aliases: Vec<String>,
}
