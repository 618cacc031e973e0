"""Pipeline stages: one module per rule file of workflow/rules/, the only package layer that
workflow/scripts/ import. A stage function takes paths and at most a few settings objects
(medinjection.settings) and calls the technology packages below it (sources/, llm/, modeling/,
evaluation/)."""
