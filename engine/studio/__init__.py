"""Interactive analysis outside training: the playground (streamed and teacher-forced rank curves) and the rank demo."""
