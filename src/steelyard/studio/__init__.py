"""Scale Studio: labeler assignments to projects, project groups, batch priorities."""
