"""What the Design workspace runs on, built once by the composition root (`aigc_studio.app`)."""

from __future__ import annotations

from aigc_studio.services.image_service import ImageService
from aigc_studio.services.library_service import LibraryService
from aigc_studio.services.recovery import RecoveryStore
from aigc_studio.viewmodels.image import GenerationViewModel


class DesignServices:
    """The generation view-model over the image service, the asset library, and the store that keeps
    unsaved designs (None: no autosave, as in tests). Nothing starts until the Design workspace is
    first shown (`start`): a writer who never opens it loads no image model."""

    def __init__(self, generation: GenerationViewModel, images: ImageService, library: LibraryService,
                 store: RecoveryStore | None = None) -> None:
        self.generation = generation
        self.images = images
        self.library = library
        self.store = store
        self.started = False

    def start(self) -> None:
        """List the image models (the first one loads) and read the library, in the background."""
        if self.started:
            return
        self.started = True
        self.generation.refresh_models()
        self.library.start()

    def shutdown(self) -> None:
        """Stop the view-model's timers, then the image and library services (before the model host)."""
        self.generation.shutdown()
        self.images.shutdown()
        self.library.shutdown()
