"""torchsem.nn's modules raise :class:`torchsem.errors.InputError`; imported here for them."""

from ..errors import InputError as InputError
