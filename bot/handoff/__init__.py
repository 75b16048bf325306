"""Handing a conversation to a person of an approved association: the directory of
associations, the routing of a request, and (to come) the staff console."""
